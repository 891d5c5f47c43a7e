"""What /healthz and /readyz answer, from the session's progress, as a table."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from worker.health import Health
from worker.session import LOOP_STALLED_AFTER, Progress


@dataclass
class Session:
    running: bool
    seen: Progress
    consuming: bool = True

    def started(self) -> bool:
        return self.running

    def progress(self) -> Progress:
        return self.seen

    def is_consuming(self) -> bool:
        return self.consuming


LONG = 1000.0


# (started, seconds ago: last settled, I/O loop turned, busy since; in flight), live, why
@pytest.mark.parametrize(("started", "ago", "in_flight", "live", "why"), [
    (False, (LONG, LONG, LONG), 0, True, "starting"),
    (True, (LONG, 0, LONG), 0, True, "ok"),  # idle for long: fine
    (True, (LONG, 0, 1), 3, True, "ok"),  # busy, not for long
    (True, (100, 0, LONG), 3, False, "stalled: 3 message(s)"),
    (True, (0, LOOP_STALLED_AFTER + 5, 0), 0, False, "the AMQP I/O loop"),
])
def test_liveness(started: bool, ago: tuple[float, float, float], in_flight: int, live: bool,
                  why: str) -> None:
    now = time.monotonic()
    settled, loop, busy = (now - a for a in ago)
    session = Session(started, Progress(settled, loop, busy, in_flight))
    answer = Health(session, stall_limit=60).live()
    assert answer[0] is live
    assert answer[1].startswith(why)


def test_readiness_follows_consuming() -> None:
    now = time.monotonic()
    assert Health(Session(True, Progress(now, now)), 60).ready() == (True, "ready")
    assert not Health(Session(True, Progress(now, now), consuming=False), 60).ready()[0]
