"""The memory of accounts held back behind a retried event: what blocks, what releases, expiry."""

from __future__ import annotations

import pytest

from worker.holds import RetryHolds
from worker.policy import Retry

RETRY = Retry(0, 5.0, "transient CrmUnavailableError")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("steps", "asked", "blocked"), [
    ([], ("A", "e2"), False),
    ([("hold", "A", "e1")], ("A", "e2"), True),
    ([("hold", "A", "e1")], ("A", "e1"), False),  # the retried event itself comes back
    ([("hold", "A", "e1")], ("B", "e2"), False),  # another account
    ([("hold", "A", "e1"), ("release", "A", "e1")], ("A", "e2"), False),
    ([("hold", "A", "e1"), ("release", "A", "e9")], ("A", "e2"), True),  # not the blocker
    ([("hold", "A", "e1"), ("wait", 5.0 * 2 + 10, "")], ("A", "e2"), True),
    ([("hold", "A", "e1"), ("wait", 5.0 * 2 + 11, "")], ("A", "e2"), False),  # expired
])
def test_which_events_wait_behind_a_retried_one(steps: list[tuple[str, object, str]],
                                                asked: tuple[str, str], blocked: bool) -> None:
    clock = Clock()
    holds = RetryHolds(clock, slack=10.0)
    for verb, first, second in steps:
        if verb == "hold":
            holds.hold(str(first), second, RETRY)
        elif verb == "release":
            holds.release(str(first), second)
        else:
            clock.now += float(first)  # type: ignore[arg-type]
    assert (holds.blocking(*asked) is not None) is blocked
