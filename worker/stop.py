"""The one stop token the signal handler, ``App``, the AMQP session and the processing side share."""

from __future__ import annotations

import threading
import time

import structlog


class StopToken:
    """Asked once, seen everywhere. ``request`` works from any thread; ``request_from_signal``
    only assigns an attribute, because a signal handler must never take a lock (see
    ``worker.signals``); the main thread turns that into a real stop the next time it asks
    ``stopping()``."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._signalled: str | None = None  # assigned by a signal handler, read on the main thread
        self._log = structlog.get_logger("winback.stop")

    def request(self) -> None:
        """Ask for a stop, from any thread (not from a signal handler)."""
        self._event.set()

    def request_from_signal(self, name: str) -> None:
        """Ask for a stop from a signal handler: no lock, no logging, one assignment."""
        self._signalled = name

    def stopping(self) -> bool:
        """Main thread: has a stop been asked for, by a thread or by a signal?"""
        if self._signalled is not None and not self._event.is_set():
            self._log.info("stop_requested", signal=self._signalled)
            self._event.set()
        return self._event.is_set()

    def is_set(self) -> bool:
        """Any thread: has a stop been turned into a real one yet?"""
        return self._event.is_set()

    def pause(self, seconds: float) -> bool:
        """Main thread: wait ``seconds`` unless a stop is asked for; True if one was. Polls in
        0.1 s steps so a signal (which sets no event) is noticed promptly."""
        deadline = time.monotonic() + seconds
        while not self.stopping() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.stopping()
