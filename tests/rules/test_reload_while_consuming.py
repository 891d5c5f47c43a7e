"""Reloading rules while the real worker consumes from a real RabbitMQ: never a mixed rule set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers.registry import handle
from tests.integration.broker import (
    Names,
    delete_all,
    message_count,
    new_names,
    publish,
    require_broker,
    work_count,
)
from tests.integration.harness import lapsed, make_settings, running
from tests.rules.disk import ConfigMapVolume
from tests.rules.test_reload import RecordingLog
from tests.waiting import wait_until
from worker.app import consume
from worker.crm.local import LocalCrm
from worker.dispatch import Processor
from worker.metrics import Metrics
from worker.policy import RetryPolicy
from worker.rules_source import RulesHolder, RulesWatcher, load_snapshot
from worker.stop import StopToken

pytestmark = pytest.mark.integration
RETRY_DELAYS = (0.2, 0.2, 0.2)


@pytest.fixture
def names() -> Iterator[Names]:
    require_broker()
    names = new_names()
    yield names
    delete_all(names, RETRY_DELAYS)


def _publish(names: Names, batch: str, count: int) -> None:
    for n in range(count):
        publish(names, lapsed(f"evt-{batch}-{n}", f"ACC-{batch}-{n}"))


def test_rules_swapped_while_consuming_apply_whole_and_a_bad_swap_is_refused(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path, retry_delays=RETRY_DELAYS, batch_size=5)
    volume = ConfigMapVolume(tmp_path / "config")
    volume.publish(1)
    rules, loaded = load_snapshot(volume.rules)
    holder, metrics = RulesHolder(rules), Metrics()
    watcher = RulesWatcher(volume.rules, holder, 0.02, loaded=loaded, metrics=metrics,
                           log=RecordingLog())
    crm = LocalCrm(settings.local_crm_path)
    processor = Processor(crm, holder.current, handle, lambda: datetime.now(UTC),
                          RetryPolicy(settings.retry_delays))
    consumer = consume(settings, processor, metrics, StopToken())

    def tasks() -> list[dict[str, str]]:
        return [r.fields for r in crm.records() if r.kind == "task"]

    _publish(names, "a", 30)
    watcher.start()
    try:
        with running(consumer):
            wait_until(lambda: len(tasks()) > 0, what="the first events handled under v1")
            volume.publish(2)  # while the first batch is still being consumed
            wait_until(lambda: holder.current().version == "2", what="version 2 in force")
            _publish(names, "b", 10)
            volume.publish(3, valid=False)
            wait_until(lambda: metrics.registry.get_sample_value(
                "winback_rules_reloads_refused_total") == 1.0, what="version 3 refused")
            _publish(names, "c", 10)
            wait_until(lambda: len(tasks()) == 50 and work_count(settings) == 0,
                       what="all 50 events handled")
            assert consumer.wait_settled(30), "all 50 events settled"
        written = tasks()
    finally:
        watcher.stop()
        crm.close()
    for task in written:  # subject, template and stamp all from the one rule set in force
        version = task["rules_version"]
        assert task["subject"] == f"v{version}"
        assert task["description"].startswith(f"version {version} for ")
        assert task["rule_id"] == f"first-v{version}"
    by_batch = {(t["event_id"].split("-")[1], t["rules_version"]) for t in written}
    assert ("a", "1") in by_batch
    assert {v for b, v in by_batch if b in ("b", "c")} == {"2"}
    assert holder.current().version == "2"
    assert message_count(settings.parking_queue) == 0
