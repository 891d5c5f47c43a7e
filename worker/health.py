"""What ``/healthz`` and ``/readyz`` answer, from the session's progress: each with the reason.

- live (``/healthz``, the kubelet restarts the pod when it fails): the AMQP I/O loop turns (or
  waits to reconnect, which is its job then), and the processing side has settled something
  within ``stall_limit`` seconds whenever messages wait. Before the session starts (start-up
  checks, a CRM waited for) the worker is alive.
- ready (``/readyz``): consuming, that is connected, subscribed, not paused, not draining.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from worker.session import Progress


class Observed(Protocol):
    def started(self) -> bool: ...
    def progress(self) -> Progress: ...
    def is_consuming(self) -> bool: ...


@dataclass(frozen=True)
class Health:
    session: Observed
    stall_limit: float

    def live(self) -> tuple[bool, str]:
        if not self.session.started():
            return True, "starting"
        now = time.monotonic()
        progress = self.session.progress()
        if not progress.io_loop_alive(now):
            return False, f"the AMQP I/O loop has not turned for {now - progress.io_loop_at:.0f} s"
        stalled = progress.stalled_for(now)
        if stalled > self.stall_limit:
            return False, (f"stalled: {progress.in_flight} message(s) waiting and nothing settled "
                           f"for {stalled:.0f} s (WINBACK_STALL_LIMIT {self.stall_limit:.0f} s)")
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self.session.is_consuming():
            return True, "ready"
        return False, "not consuming (connecting, paused for the CRM, or draining)"
