"""The queue depths the alerts read: work, retry and parking queues, sampled from the broker."""

from __future__ import annotations

from pathlib import Path

from tests.integration.broker import Names, channel, publish
from tests.integration.harness import lapsed, make_settings
from worker.metrics import Metrics
from worker.queue_depths import QueueDepths


def test_each_queue_is_sampled_with_its_role(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    publish(names, lapsed("evt-1", "ACC-1"))
    publish(names, lapsed("evt-2", "ACC-2"))
    with channel() as ch:
        ch.basic_publish("", settings.parking_queue, b"{}")
    metrics = Metrics()
    QueueDepths(settings, metrics).sample()

    def depth(queue: str, role: str) -> float | None:
        return metrics.registry.get_sample_value("winback_queue_messages", {"queue": queue, "role": role})

    assert sum(depth(f"{settings.queue}.p{i}", "work") or 0 for i in range(settings.partitions)) == 2
    assert depth(settings.parking_queue, "parked") == 1
    assert depth(f"{settings.queue}.retry.200ms", "retry") == 0


def test_a_queue_not_declared_yet_is_left_out(tmp_path: Path) -> None:
    from tests.integration.broker import new_names, require_broker
    from worker.settings import load_settings

    require_broker()
    names = new_names()
    settings = load_settings(**names.settings)
    metrics = Metrics()
    QueueDepths(settings, metrics).sample()
    assert metrics.registry.get_sample_value(
        "winback_queue_messages", {"queue": f"{settings.queue}.p0", "role": "work"}) is None
