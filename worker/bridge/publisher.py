"""The bridge's side of the broker: events published with confirms, then the replay id stored.

One connection in confirm mode, opened again on the next use after it was lost. The bridge tends
it (``keep_alive``) between responses, so heartbeats are answered while no change arrives and a
connection the broker closed is noticed at once, not at the next change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from handlers.errors import BrokerLostError
from worker.amqp import connection_parameters
from worker.bridge.replay import BrokerReplayStore, Position
from worker.bridge.settings import BridgeSettings
from worker.publisher import publish_event
from worker.topology import Topology

# Errors pika raises when the connection or channel is gone (the socket, or the broker closed it).
_LOST = (pika.exceptions.AMQPError, OSError)


class BridgePublisher:
    """Every ``publish`` returns once the broker holds the events and then the replay id."""

    def __init__(self, settings: BridgeSettings, topic: str) -> None:
        self._settings, self._topic = settings, topic
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._store: BrokerReplayStore | None = None
        self._open()

    def _open(self) -> tuple[BlockingChannel, BrokerReplayStore]:
        self.close()
        settings = self._settings
        name = f"winback-bridge {settings.bridge_replay_queue} {self._topic}"
        try:
            self._connection = pika.BlockingConnection(connection_parameters(settings, name))
            channel = self._connection.channel()
            Topology.from_settings(settings).declare(channel)
            channel.confirm_delivery()
            store = BrokerReplayStore(channel, settings.bridge_replay_queue, self._topic)
        except _LOST as exc:
            self.close()
            raise BrokerLostError(f"broker unreachable: {exc.__class__.__name__}") from exc
        self._channel, self._store = channel, store
        return channel, store

    def _ready(self) -> tuple[BlockingChannel, BrokerReplayStore]:
        """The channel and store, reconnecting when the connection was lost since the last use."""
        if self._channel is None or self._store is None or not self.connected():
            return self._open()
        return self._channel, self._store

    def connected(self) -> bool:
        """The connection and channel are open, as far as pika last heard (read by the probes)."""
        connection, channel = self._connection, self._channel
        return bool(connection and connection.is_open and channel and channel.is_open)

    def keep_alive(self) -> None:
        """Answer heartbeats and read what the broker sent; a lost connection raises."""
        try:
            if self._connection is not None:
                self._connection.process_data_events(0)
        except _LOST as exc:
            self.close()
            raise BrokerLostError(f"broker connection lost: {exc.__class__.__name__}") from exc

    def position(self) -> Position | None:
        try:
            return self._ready()[1].load()
        except _LOST as exc:
            self.close()
            raise BrokerLostError(f"cannot read the stored replay id: {exc.__class__.__name__}") from exc

    def mark_started(self) -> None:
        """Store an empty position: started, nothing confirmed yet."""
        self._save(b"")

    def publish(self, events: Sequence[dict[str, Any]], replay_id: bytes | None) -> None:
        """Publish ``events`` in order, then store ``replay_id``: each step confirmed before the next."""
        channel, _ = self._ready()
        try:
            for event in events:
                publish_event(channel, self._settings.exchange, event)
        except _LOST as exc:
            self.close()
            raise BrokerLostError(f"publish failed: {exc.__class__.__name__}") from exc
        if replay_id:
            self._save(replay_id)

    def _save(self, replay_id: bytes) -> None:
        _, store = self._ready()
        try:
            store.save(replay_id)
        except _LOST as exc:
            self.close()
            raise BrokerLostError(f"storing the replay id failed: {exc.__class__.__name__}") from exc

    def close(self) -> None:
        connection, self._connection, self._channel, self._store = self._connection, None, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*_LOST):  # already going: nothing to release
                connection.close()
