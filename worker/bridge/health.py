"""What the bridge's ``/healthz`` and ``/readyz`` answer, from each topic's progress: each with its reason.

- live (``/healthz``, the kubelet restarts the pod when it fails): every topic's loop turns (a
  response, a tick of its own, or an attempt to reconnect, which is its job while the service or
  the broker is away) within ``stall_limit`` seconds, and none has ended with an error.
- ready (``/readyz``): every topic is subscribed and its broker connection is open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Progress:
    """One topic's state as its bridge thread last wrote it; the probes read it from their thread."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._subscribed = False
        self._turned_at = time.monotonic()
        self._failed: str | None = None
        self._lost: str | None = None

    def turned(self, at: float | None = None) -> None:
        with self._lock:
            self._turned_at = time.monotonic() if at is None else at

    def subscribed(self, now: bool) -> None:
        with self._lock:
            self._subscribed = now
            self._turned_at = time.monotonic()
            if now:
                self._lost = None

    def lost(self, why: str) -> None:
        """The last attempt failed with ``why``: readiness says it until the next subscription."""
        with self._lock:
            self._lost = why

    def failed(self, why: str) -> None:
        with self._lock:
            self._failed, self._subscribed = why, False

    def read(self) -> tuple[bool, float, str | None]:
        """(subscribed, monotonic time of the last turn, why it ended or None)."""
        with self._lock:
            return self._subscribed, self._turned_at, self._failed

    def why_not_subscribed(self) -> str:
        with self._lock:
            if self._failed is not None:
                return self._failed
            if self._lost is not None:
                return f"waiting to reconnect; last attempt: {self._lost}"
            return "connecting to the Pub/Sub API"


@dataclass(frozen=True)
class Topic:
    """What the probes look at for one topic: its progress and whether its broker link is up."""

    progress: Progress
    broker_connected: Callable[[], bool]


@dataclass(frozen=True)
class BridgeHealth:
    topics: Sequence[Topic]
    stall_limit: float

    def live(self) -> tuple[bool, str]:
        now = time.monotonic()
        for topic in self.topics:
            _, turned_at, failed = topic.progress.read()
            if failed is not None:
                return False, f"{topic.progress.topic}: the bridge ended: {failed}"
            if now - turned_at > self.stall_limit:
                return False, (f"{topic.progress.topic}: stalled, no turn for {now - turned_at:.0f} s "
                               f"(WINBACK_STALL_LIMIT {self.stall_limit:.0f} s)")
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        for topic in self.topics:
            progress = topic.progress
            if not progress.read()[0]:
                return False, f"{progress.topic}: not subscribed ({progress.why_not_subscribed()})"
            if not topic.broker_connected():
                return False, f"{topic.progress.topic}: no broker connection (reconnecting)"
        return True, "ready"
