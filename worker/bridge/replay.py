"""Where the bridge resumes: the last replay id whose events the broker confirmed, kept in the broker.

A durable queue per topic holding one message (``x-max-length`` 1, oldest dropped): a Kubernetes
deployment already keeps the broker's state, so the bridge needs no volume of its own. The id is
written on the channel the events went out on, after their confirms, so it never runs ahead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pika


@dataclass(frozen=True)
class Position:
    """A stored replay id, and when it was stored."""

    replay_id: bytes
    stored_at: datetime

    def expired(self, now: datetime, retention: timedelta) -> bool:
        return now - self.stored_at > retention


class BrokerReplayStore:
    """Load and save one topic's position in the queue ``{prefix}.{topic}``."""

    def __init__(self, channel: Any, prefix: str, topic: str) -> None:
        self._channel = channel
        self.queue = f"{prefix}.{re.sub(r'[^A-Za-z0-9_]+', '.', topic).strip('.')}"
        channel.queue_declare(self.queue, durable=True,
                              arguments={"x-max-length": 1, "x-overflow": "drop-head"})

    def load(self) -> Position | None:
        method, _props, body = self._channel.basic_get(self.queue, auto_ack=False)
        if method is None:
            return None
        # Put it back at once: only ready messages count towards x-max-length.
        self._channel.basic_nack(method.delivery_tag, requeue=True)
        saved = json.loads(body)
        return Position(bytes.fromhex(saved["replay_id"]), datetime.fromisoformat(saved["stored_at"]))

    def save(self, replay_id: bytes, now: datetime | None = None) -> None:
        """Returns once the broker confirmed it (the channel is in confirm mode)."""
        body = {"replay_id": replay_id.hex(), "stored_at": (now or datetime.now(UTC)).isoformat()}
        self._channel.basic_publish("", self.queue, json.dumps(body).encode(),
                                    pika.BasicProperties(delivery_mode=2,
                                                         content_type="application/json"))
