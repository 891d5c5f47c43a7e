"""Backpressure: a CRM that keeps failing slows the worker down, and the backlog stays in the
broker, not in the worker's memory."""

from __future__ import annotations

from pathlib import Path

from tests.integration.broker import Names, publish_many, work_count
from tests.integration.harness import FlakyCrm, lapsed, make_consumer, make_settings, running
from tests.waiting import wait_until
from worker.crm.local import LocalCrm

EVENTS = 600


def test_a_crm_that_keeps_failing_slows_the_worker_and_it_holds_no_more_than_its_prefetch(
    names: Names, tmp_path: Path
) -> None:
    # Two lanes of ten: 40 in flight at most (WINBACK_PREFETCH 0), 20 per partition.
    settings = make_settings(names, tmp_path, batch_size=10, crm_concurrency=2, batch_wait_ms=0,
                             retry_delays=(60.0,))
    failing = FlakyCrm(LocalCrm(settings.local_crm_path), failures=10**9)
    consumer, _, metrics = make_consumer(settings, crm=failing)
    publish_many(names, [lapsed(f"evt-{n}", f"ACC-{n}") for n in range(EVENTS)])
    samples: list[float] = []

    def gauge(name: str) -> float:
        return metrics.registry.get_sample_value(name) or 0.0

    def backed_off() -> bool:
        samples.append(gauge("winback_in_flight"))
        return gauge("winback_backoff_seconds") >= 4.0  # four failed batches in a row on a lane

    with running(consumer):
        wait_until(backed_off, timeout=60, what="a lane backing off to 4 s")
        retried = metrics.registry.get_sample_value("winback_events_total", {"outcome": "retried"}) or 0
        waiting = work_count(settings)
    assert max(samples) <= settings.in_flight_limit == 40, "never more received than the prefetch"
    # Each lane ran at most five batches of ten before the back-off reached 4 s: the rest waits
    # in the broker instead of cycling through the retry queue.
    assert retried <= 2 * 5 * 10
    assert waiting >= EVENTS - 2 * 5 * 10 - settings.in_flight_limit
