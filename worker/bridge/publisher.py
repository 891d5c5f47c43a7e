"""The bridge's side of the broker: events published with confirms, then the replay id stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions

from handlers.errors import BrokerLostError
from worker.bridge.replay import BrokerReplayStore, Position
from worker.bridge.settings import BridgeSettings
from worker.topology import Topology


class BridgePublisher:
    """One connection in confirm mode: every ``publish`` returns once the broker holds the events."""

    def __init__(self, settings: BridgeSettings, topic: str) -> None:
        self._exchange = settings.exchange
        try:
            self._connection = pika.BlockingConnection(
                pika.URLParameters(settings.amqp_url.get_secret_value()))
            channel = self._connection.channel()
            Topology.from_settings(settings).declare(channel)
            channel.confirm_delivery()
            self._store = BrokerReplayStore(channel, settings.bridge_replay_queue, topic)
        except pika.exceptions.AMQPError as exc:
            raise BrokerLostError(f"broker unreachable: {exc.__class__.__name__}") from exc
        self._channel = channel

    def position(self) -> Position | None:
        return self._store.load()

    def mark_started(self) -> None:
        """Store an empty position: started, nothing confirmed yet."""
        self._store.save(b"")

    def publish(self, events: Sequence[dict[str, Any]], replay_id: bytes | None) -> None:
        """Publish ``events`` in order, then store ``replay_id``: each step confirmed before the next."""
        try:
            for event in events:
                self._channel.basic_publish(
                    self._exchange, event["type"], json.dumps(event).encode(),
                    pika.BasicProperties(content_type="application/cloudevents+json",
                                         delivery_mode=2, message_id=event["id"], type=event["type"]),
                    mandatory=True,
                )
            if replay_id:
                self._store.save(replay_id)
        except pika.exceptions.AMQPError as exc:
            raise BrokerLostError(f"publish failed: {exc.__class__.__name__}") from exc

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()
