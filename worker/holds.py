"""Accounts held back behind an event that waits in a retry queue, across batches.

An event that failed and will be retried leaves for a retry queue and comes back to its partition
later, behind whatever arrived meanwhile. Until it is settled (handled or parked), the account's
later events must not overtake it: each is sent after it, into the same retry tier, without
spending an attempt of its own (one tier is first in, first out, so they come back behind it).

The memory is this process's, which is enough because one replica at a time consumes a partition.
An entry expires on its own (``slack`` past twice the retry's delay), so an event that never comes
back (parked by the broker, or handled by another replica after a hand-over) holds its account
only for a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from worker.policy import Retry

HOLD_SLACK = 300.0  # seconds an entry outlives the retry's own delay (a backlog ahead of it)


@dataclass(frozen=True)
class _Hold:
    event_id: str
    retry: Retry
    until: float


class RetryHolds:
    """Per account: the event out for a retry that its later events wait behind."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, slack: float = HOLD_SLACK) -> None:
        self._clock, self._slack = clock, slack
        self._holds: dict[str, _Hold] = {}
        self._lock = threading.Lock()  # lanes share it (each account only ever on one lane)

    def __len__(self) -> int:
        return len(self._holds)

    def blocking(self, account: str, event_id: str) -> Retry | None:
        """The retry an earlier event of ``account`` waits in, when ``event_id`` must follow it."""
        with self._lock:
            hold = self._holds.get(account)
            if hold is None or hold.event_id == event_id:
                return None
            if self._clock() > hold.until:
                del self._holds[account]
                return None
            return hold.retry

    def hold(self, account: str, event_id: str, retry: Retry) -> None:
        """``event_id`` of ``account`` leaves for a retry: its account's later events wait."""
        now = self._clock()
        with self._lock:
            self._holds[account] = _Hold(event_id, retry, now + 2 * retry.delay + self._slack)
            if len(self._holds) % 1024 == 0:  # now and then, forget the expired ones
                for key in [k for k, h in self._holds.items() if h.until < now]:
                    del self._holds[key]

    def release(self, account: str, event_id: str) -> None:
        """``event_id`` is settled (handled or parked): its account's events go on."""
        with self._lock:
            hold = self._holds.get(account)
            if hold is not None and hold.event_id == event_id:
                del self._holds[account]
