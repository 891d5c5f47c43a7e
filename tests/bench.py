"""``make bench``: throughput and memory of the worker, measured side by side in one run.

Each configuration gets its own queue and CRM file, the same N lapsed events, the real handlers
and default rules, and the real broker. Ratios between configurations are what to read: the
machines are shared, so absolute figures move between runs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from handlers.registry import handle
from tests.integration.broker import channel, delete_all, new_names, require_broker
from tests.integration.harness import lapsed, make_consumer, make_settings
from worker.rules_source import load_rules

ROOT = Path(__file__).parents[1]


def _publish_many(exchange: str, count: int) -> None:
    import json

    import pika

    with channel() as ch:
        ch.confirm_delivery()
        for i in range(count):
            event = lapsed(f"bench-{i}", f"ACC-{i % (count // 2 or 1)}", annual_value=500 + 97 * i)
            ch.basic_publish(exchange, event["type"], json.dumps(event).encode(),
                             pika.BasicProperties(delivery_mode=2))


def run_one(label: str, count: int, **overrides: object) -> float:
    require_broker()
    names = new_names()
    rules = load_rules(ROOT / "config" / "rules.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(names, Path(tmp), log_format="json", log_level="warning", **overrides)
        _publish_many(settings.exchange, count)
        consumer, crm, _ = make_consumer(settings, handle=handle, rules=rules)
        started = time.perf_counter()
        consumer.run(exit_when_idle=0.2)
        elapsed = time.perf_counter() - started - 0.2
        written = len(crm.records())
        crm.close()
    delete_all(names, settings.retry_delays)
    rate = count / elapsed
    print(f"{label:<34} {count:>6} events  {elapsed:7.2f} s  {rate:8.0f} events/s  {written:>6} records")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print("winback bench: RabbitMQ on loopback, embedded CRM, default rules\n")
    batched = run_one("batch 100, prefetch 200 (default)", args.events)
    single = run_one("batch 1, prefetch 200", args.events, batch_size=1)
    print(f"\nbatching speed-up: {batched / single:.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
