"""Several CRM batches in flight at once, and one account's events never overtaking each other."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from handlers.actions import EventChange
from handlers.errors import WinbackError
from tests.integration.broker import Names, publish, work_count
from tests.integration.harness import SlowCrm, lapsed, make_consumer, make_settings, running
from tests.waiting import wait_until
from worker.crm.local import LocalCrm


class RecordingCrm(SlowCrm):
    """Records the order events reach ``apply``, and how many applies ran at once (at most)."""

    def __init__(self, inner: LocalCrm, meet: int = 1) -> None:
        super().__init__(inner, 0)
        self.applied: list[tuple[str, str]] = []
        self.running = self.most = 0
        self._lock = threading.Lock()
        self._meet = threading.Barrier(meet, timeout=20) if meet > 1 else None

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.applied.extend((c.account_id, c.event_id) for c in changes)
        try:
            if self._meet is not None and not self._meet.broken:
                try:  # wait (20 s at most) for ``meet`` applies in flight together, then run freely
                    self._meet.wait()
                    self._meet.abort()
                except threading.BrokenBarrierError:
                    pass  # met already, or never: ``most`` tells the test which
            return self.inner.apply(changes)
        finally:
            with self._lock:
                self.running -= 1


def test_batches_of_different_lanes_are_in_flight_at_the_same_time(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path, batch_size=5, crm_concurrency=4)
    crm = RecordingCrm(LocalCrm(settings.local_crm_path), meet=2)
    consumer, _, _ = make_consumer(settings, crm=crm)
    for i in range(40):
        publish(names, lapsed(f"evt-{i}", f"ACC-{i}"))
    with running(consumer):
        wait_until(lambda: len(crm.applied) == 40, timeout=30, what="all 40 events applied")
        assert consumer.wait_settled(30)
    assert crm.most >= 2, "two CRM batches were in flight at once"


def test_one_accounts_events_keep_their_order_across_batches_and_lanes(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path, batch_size=3, crm_concurrency=4, batch_wait_ms=0)
    crm = RecordingCrm(LocalCrm(settings.local_crm_path))
    consumer, _, _ = make_consumer(settings, crm=crm)
    published: dict[str, list[str]] = {}
    for i in range(120):
        account = f"ACC-{i % 7}"
        published.setdefault(account, []).append(f"evt-{i}")
        publish(names, lapsed(f"evt-{i}", account))
    with running(consumer):
        wait_until(lambda: len(crm.applied) == 120, timeout=30, what="all 120 events applied")
        assert consumer.wait_settled(30)
    for account, expected in published.items():
        assert [e for a, e in crm.applied if a == account] == expected, account
    assert work_count(settings) == 0
