"""``make bench``, timer precision: how late 1,000 timers spread over a minute fire.

Each timer is published into the delay tiers exactly as the worker publishes one it set (the
topology's ``route``), comes back through the real broker and the real processor, and is timed
when its handler runs: lateness = handler's clock minus the timer's due time. Early would be a
bug (a timer that arrives early waits again); lateness is the last tier's overshoot (under
0.25 s), the hops through the queues and the batch wait.

The worker is consuming before the first timer is published (a timer due while it was still
starting would time the start-up, not the timers). All timers are set within a second, so each
tier gives them back in bursts (three quarters of them leave the 16 s tier together): the worst
case for a timer due at that moment, and what the p99 measures. The load average is printed with
the figures: on this shared machine they mean little without it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika

from handlers.events import TIMER, Event, TimerData
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet
from tests.integration.broker import channel, delete_all, new_names, require_broker
from tests.integration.harness import make_consumer, make_settings
from tests.waiting import wait_until
from worker.crm.port import Outgoing
from worker.topology import Topology, account_headers


def _timer(n: int, due: datetime) -> Outgoing:
    data = {"account_id": f"ACC-{n}", "plan_key": f"ACC-{n}#1", "timer_key": f"t{n}",
            "kind": "unless_done", "step_key": f"ACC-{n}#1:ack", "due_at": due.isoformat(),
            "rule_id": "bench", "spec_index": 0, "origin": {}}
    payload = {"specversion": "1.0", "id": f"timer:bench-{n}", "source": "winback/bench",
               "type": TIMER, "data": data}
    return Outgoing(payload["id"], TIMER, payload, due.isoformat())


class Stopwatch:
    """A handler that only notes how late each timer came, and when all have."""

    def __init__(self, count: int) -> None:
        self.late: list[float] = []
        self.count = count
        self.done = threading.Event()

    def __call__(self, event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
        if isinstance(event.data, TimerData):
            self.late.append((now - event.data.due_at).total_seconds())
            if len(self.late) >= self.count:
                self.done.set()
        return Outcome((), plan)


def run(count: int, spread: float) -> list[float]:
    require_broker()
    names = new_names()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(names, Path(tmp), log_format="json", log_level="warning")
        topology = Topology.from_settings(settings)
        watch = Stopwatch(count)
        consumer, crm, _ = make_consumer(settings, handle=watch)
        thread = threading.Thread(target=consumer.run, name="bench-consumer")
        thread.start()
        wait_until(consumer.is_consuming, timeout=30, what="the worker to consume")
        start = datetime.now(UTC) + timedelta(seconds=2)
        timers = [_timer(n, start + timedelta(seconds=random.uniform(0, spread)))
                  for n in range(count)]
        with channel() as ch:
            ch.confirm_delivery()
            now = datetime.now(UTC)
            for timer in timers:
                exchange, key = topology.route(timer, now)
                ch.basic_publish(exchange, key, json.dumps(timer.payload).encode(),
                                 pika.BasicProperties(delivery_mode=2, message_id=timer.message_id,
                                                      headers=account_headers(timer.payload)))
        finished = watch.done.wait(spread + 60)
        consumer.stop()
        thread.join(timeout=30)
        crm.close()
    delete_all(names, settings.retry_delays)
    if not finished:
        raise SystemExit(f"only {len(watch.late)} of {count} timers fired")
    return watch.late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timers", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the due times span")
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    late = sorted(run(args.timers, args.spread))
    cuts = statistics.quantiles(late, n=100)
    print(f"timer precision: {len(late)} timers due over {args.spread:.0f} s "
          f"({time.perf_counter() - started:.0f} s run; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)")
    print(f"  late by  p50 {cuts[49] * 1000:6.0f} ms   p99 {cuts[98] * 1000:6.0f} ms   "
          f"max {late[-1] * 1000:6.0f} ms   early: {sum(1 for s in late if s < 0)}")


if __name__ == "__main__":
    main()
