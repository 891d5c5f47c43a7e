"""The queue depths the alerts read: work, retry, parking and timer tier queues, sampled from the broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.broker import Names, channel, publish
from tests.integration.harness import lapsed, make_settings
from worker.crm.port import Outgoing
from worker.metrics import Metrics
from worker.queue_depths import QueueDepths
from worker.topology import TIMER_TIERS_MS, Topology


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
    assert depth(f"{settings.queue}.timer.250ms", "timer") == 0


def test_the_timers_waiting_in_each_delay_tier_are_sampled(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    topology = Topology.from_settings(settings)
    now = datetime.now(UTC)
    # Due in 3 days and in 20 minutes: tiers long enough that none leaves before the sample.
    waits = [timedelta(days=3)] * 2 + [timedelta(minutes=20)]
    with channel() as ch:
        for n, wait in enumerate(waits):
            timer = Outgoing(f"timer:t{n}", "winback.timer.due", {"id": f"timer:t{n}"},
                             (now + wait).isoformat())
            exchange, key = topology.route(timer, now)
            ch.basic_publish(exchange, key, json.dumps(timer.payload).encode())
    metrics = Metrics()
    QueueDepths(settings, metrics).sample()
    tiers = {ms: metrics.registry.get_sample_value(
        "winback_queue_messages", {"queue": topology.timer_queue(ms), "role": "timer"})
        for ms in TIMER_TIERS_MS}
    assert tiers[65_536_000] == 2  # the 3-day timers first wait in the 18.2-hour tier
    assert tiers[1_024_000] == 1  # the 20-minute one in the 17-minute tier
    assert sum(v or 0 for v in tiers.values()) == 3
    assert None not in tiers.values(), "every tier sampled"


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


def test_deleting_the_topology_removes_every_queue_it_declared_and_says_what_each_held(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path)
    topology = Topology.from_settings(settings)
    now = datetime.now(UTC)
    timer = Outgoing("timer:t", "winback.timer.due", {"id": "timer:t"}, (now + timedelta(days=3)).isoformat())
    exchange, key = topology.route(timer, now)
    with channel() as ch:
        ch.basic_publish(exchange, key, b"{}")
        held = topology.delete(ch)
    assert held[topology.timer_queue(65_536_000)] == 1
    assert sum(held.values()) == 1
    assert set(held) == {*topology.partition_queues, settings.queue, settings.parking_queue,
                         *topology.timer_queues,
                         *(topology.retry_queue(t) for t in range(len(topology.retry_delays)))}
    metrics = Metrics()
    QueueDepths(settings, metrics).sample()  # every queue gone: nothing to sample
    assert metrics.registry.get_sample_value(
        "winback_queue_messages", {"queue": f"{settings.queue}.p0", "role": "work"}) is None
