"""The bench's worker runner (``tests.bench_worker``) reads a real ``winback run`` process right."""

from __future__ import annotations

import json
from pathlib import Path

import pika

from tests.bench_worker import run_worker
from tests.integration.broker import channel, delete_all, new_names, require_broker
from tests.integration.harness import lapsed, make_settings
from worker.topology import account_headers

ROOT = Path(__file__).parents[2]


def test_the_runner_sees_every_event_handled_with_the_process_own_cpu_and_memory(tmp_path: Path) -> None:
    require_broker()
    names = new_names()
    settings = make_settings(names, tmp_path, rules=ROOT / "config" / "rules.yaml", log_level="info")
    events = [lapsed(f"bench-smoke-{n}", f"ACC-{n}") for n in range(20)]
    try:
        with channel() as ch:
            ch.confirm_delivery()
            for event in events:
                ch.basic_publish(settings.exchange, event["type"], json.dumps(event).encode(),
                                 pika.BasicProperties(delivery_mode=2, headers=account_headers(event)))
        run = run_worker(settings, tmp_path / "worker.log", timeout=120)
    finally:
        delete_all(names, settings.retry_delays)
    assert set(run.handled) == {e["id"] for e in events}
    assert run.consuming_at > 0
    assert run.seconds > 0
    assert all(at >= run.consuming_at for at in run.handled.values())
    assert run.cpu_seconds > 0.1  # a Python process that imported pika, pydantic and Jinja
    assert run.peak_rss_mib > 20
