"""``make bench``: the worker's throughput against a bare consumer and a hand-written baseline.

One process tree, the real RabbitMQ, the project's Salesforce test server (``tests.benchserver``,
its own process, every call held ``--latency`` seconds):

(a) ceiling: a bare pika consumer acking what it gets;
(b) baseline: the same events and handlers, then a 32-thread pool making one simple-salesforce
    call per record each event writes (what a user would write by hand);
(c) the worker, default rules, against the test server: lapsed events plus complaints and
    meetings of the same accounts in proportion;
(c') the same with larger batches (``--large-batch``, WINBACK_BATCH_SIZE), for the calls per event;
(d) the worker on the embedded CRM;
then p50/p99 publish→commit with events offered at ``--rate`` per second to the worker on the
test server. Ratios are what to read: the machine is shared, so absolute figures move.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pika
import requests
from simple_salesforce import Salesforce

from handlers.actions import EventChange, PublishEvent
from handlers.errors import WinbackError
from handlers.events import parse_event
from handlers.registry import handle
from tests.benchserver import account_id, contact_id
from tests.integration.broker import channel, delete_all, new_names, require_broker
from tests.integration.harness import lapsed, make_consumer, make_settings
from tests.sfserver.cast import ALICE
from worker.crm.port import Crm, Snapshot
from worker.crm.salesforce import SalesforceCrm
from worker.logs import configure
from worker.rules_source import load_rules
from worker.settings import Settings
from worker.topology import account_headers

ROOT = Path(__file__).parents[1]


@dataclass
class Row:
    label: str
    events: int
    seconds: float
    api_calls: float | None = None
    in_flight: str = "-"
    cpu_ms: float | None = None
    server_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@contextmanager
def test_server(latency: float, events: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The test org in its own process, with the accounts ``events`` name; yields its login facts
    and, after, its figures."""
    accounts = str(accounts_for(events))
    proc = subprocess.Popen([sys.executable, "-m", "tests.benchserver", str(latency), accounts], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdin is not None
    info = json.loads(proc.stdout.readline())
    figures: dict[str, Any] = {}
    try:
        yield info, figures
    finally:
        proc.stdin.close()
        line = proc.stdout.readline()
        proc.wait(timeout=60)
        figures.update(json.loads(line) if line else {})


def _salesforce_settings(info: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {"crm": "salesforce", "salesforce_login_url": info["url"],
            "salesforce_client_id": info["client_id"], "salesforce_username": info["username"],
            "salesforce_private_key_file": Path(info["key_file"]),
            "salesforce_ca_bundle": Path(info["ca_file"]),
            "salesforce_api_version": info["api_version"], "salesforce_timeout": 30.0} | overrides


def accounts_for(events: int) -> int:
    """How many accounts ``events_for(events, ...)`` names."""
    return (events // 10 + 1) * 8


def events_for(count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` events: per 10 accounts' worth, 8 lapses, then a complaint and a meeting of the
    lapsed accounts, so they find the plans the lapses opened. They name the test org's accounts,
    contacts and an active user, as real events name real records, and happen now, so the timers
    they set wait for their time in the delay tiers, as they would in production."""
    now = datetime.now(UTC).replace(microsecond=0)
    stamp, today = now.isoformat().replace("+00:00", "Z"), now.date().isoformat()
    events: list[dict[str, Any]] = []
    for i in range(count):
        n, kind = divmod(i, 10)
        first = n * 8
        event = lapsed(f"{prefix}-e{i}", account_id(first + min(kind, 7)), owner_id=ALICE,
                       contact_id=contact_id(first + min(kind, 7)), annual_value=500 + 97 * i,
                       lapsed_at=today) | {"time": stamp}
        if kind == 8:
            event = event | {"type": "crm.complaint.logged", "data": {
                "account_id": account_id(first), "complaint_id": f"C{i}", "severity": "high",
                "logged_at": stamp, "owner_id": ALICE, "summary": "late"}}
        elif kind == 9:
            event = event | {"type": "crm.meeting.held", "data": {
                "account_id": account_id(first + 1), "meeting_id": f"M{i}", "kind": "check_in",
                "held_at": stamp, "owner_id": ALICE, "notes": "ok",
                "sentiment": 1, "outcome": "continuing"}}
        events.append(event)
    return events


def publish(exchange: str, events: Sequence[dict[str, Any]], rate: float | None = None,
            stamps: dict[str, float] | None = None) -> None:
    with channel() as ch:
        ch.confirm_delivery()
        started = time.monotonic()
        for i, event in enumerate(events):
            if rate is not None:
                wait = started + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # pacing the offered load, not synchronisation
            if stamps is not None:
                stamps[event["id"]] = time.monotonic()
            ch.basic_publish(exchange, event["type"], json.dumps(event).encode(),
                             pika.BasicProperties(delivery_mode=2, headers=account_headers(event)))


def ceiling(count: int) -> Row:
    names = new_names()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(names, Path(tmp), partitions=1)  # one queue, as a bare consumer has
    publish(settings.exchange, events_for(count, "ceil"))
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url.get_secret_value()))
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1000)
    started = time.perf_counter()
    for got, (method, _props, _body) in enumerate(ch.consume(f"{settings.queue}.p0"), start=1):
        ch.basic_ack(method.delivery_tag)
        if got == count:
            break
    elapsed = time.perf_counter() - started
    ch.cancel()
    connection.close()
    delete_all(names, settings.retry_delays)
    return Row("(a) ceiling: bare pika consumer", count, elapsed)


def baseline(count: int, latency: float) -> Row:
    """What a user would write by hand: the same events through the same handlers and rules,
    then a 32-thread pool making one simple-salesforce call per record each event writes."""
    rules = load_rules(ROOT / "config" / "rules.yaml")
    now = datetime.now(UTC)
    with test_server(latency, count) as (info, figures):
        http = requests.Session()
        http.verify, http.trust_env = info["ca_file"], False  # not REQUESTS_CA_BUNDLE
        sf = Salesforce(instance_url=info["url"], session_id=info["token"], session=http,
                        version=info["api_version"])

        def one(event: dict[str, Any]) -> None:
            outcome = handle(parse_event(json.dumps(event).encode()), None, rules, now)
            for n, _ in enumerate(a for a in outcome.actions if not isinstance(a, PublishEvent)):
                sf.Task.create({"Subject": f"{event['id']} record {n}"})

        started = time.perf_counter()
        cpu = time.process_time()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(one, events_for(count, "base")))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return Row("(b) baseline: 32 threads, 1 call per record", count, elapsed,
               figures["api_calls"] / count, _in_flight(figures), 1000 * cpu / count,
               figures["cpu_seconds"])


def _in_flight(figures: dict[str, Any]) -> str:
    return f"{figures['in_flight_mean']:.1f} / {figures['in_flight_max']}"


class CommitClock:
    """The CRM, noting when each event's writes were committed (for publish→commit).

    Not a subclass of the ``Crm`` protocol: its methods' empty bodies would shadow the
    delegation below (``step_states`` answering None)."""

    def __init__(self, inner: Crm) -> None:
        self.inner, self.name = inner, inner.name
        self.committed: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        return self.inner.load(account_ids, event_ids)

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        errors = self.inner.apply(changes)
        now = time.monotonic()
        for change, error in zip(changes, errors, strict=True):
            if error is None:
                self.committed[change.event_id] = now
        return errors


def worker_run(label: str, count: int, latency: float | None, rate: float | None = None,
               **overrides: Any) -> tuple[Row, CommitClock, dict[str, float]]:
    require_broker()
    names = new_names()
    rules = load_rules(ROOT / "config" / "rules.yaml")
    stamps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, _maybe_server(latency, count) as (info, figures):
        extra = _salesforce_settings(info) if info else {}
        # The worker's own batching defaults, not the integration tests' quicker ones.
        defaults = {"batch_wait_ms": Settings.model_fields["batch_wait_ms"].default}
        settings = make_settings(names, Path(tmp), log_format="json",
                                 **(defaults | extra | overrides))
        inner = SalesforceCrm.from_settings(settings) if info else None
        crm = CommitClock(inner) if inner else None
        events = events_for(count, settings.queue[-8:])
        if rate is None:
            publish(settings.exchange, events)
        consumer, used, _ = make_consumer(settings, crm=cast(Crm, crm), handle=handle,
                                          rules=rules)
        clock = crm or CommitClock(used)
        if rate is not None:
            threading.Thread(target=publish, args=(settings.exchange, events, rate, stamps),
                             daemon=True).start()
        started, cpu = time.perf_counter(), time.process_time()
        consumer.run(exit_when_idle=0.5)
        elapsed = time.perf_counter() - started - 0.5
        cpu = time.process_time() - cpu
        used.close()
    delete_all(names, settings.retry_delays)
    calls = figures.get("api_calls")
    row = Row(label, count, elapsed, calls / count if calls else None,
              _in_flight(figures) if figures else "-", 1000 * cpu / count,
              figures.get("cpu_seconds"))
    return row, clock, stamps


@contextmanager
def _maybe_server(latency: float | None, events: int
                  ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    if latency is None:
        yield {}, {}
        return
    with test_server(latency, events) as both:
        yield both


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--baseline-events", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--large-batch", type=int, default=500,
                        help="WINBACK_BATCH_SIZE of the extra worker row (0: no extra row)")
    args = parser.parse_args()
    _log_like_the_worker()
    print(f"winback bench: RabbitMQ on loopback, test server at {args.latency * 1000:.0f} ms/call, "
          f"{os.cpu_count()} cores\n", flush=True)
    rows = [ceiling(args.events), baseline(args.baseline_events, args.latency)]
    rows.append(worker_run("(c) worker, Salesforce test server", args.events, args.latency)[0])
    if args.large_batch:
        rows.append(worker_run(f"(c') worker, batches of {args.large_batch}", args.events,
                               args.latency, batch_size=args.large_batch)[0])
    rows.append(worker_run("(d) worker, embedded CRM", args.events, None)[0])
    offered = int(args.rate * args.rate_seconds)
    _, clock, stamps = worker_run("latency", offered, args.latency, rate=args.rate)
    delays = [clock.committed[e] - t for e, t in stamps.items() if e in clock.committed]
    _print(rows, args)
    print(f"\npublish→commit at {args.rate:.0f} events/s offered ({len(delays)} of {offered} committed): "
          f"p50 {1000 * _percentile(delays, 0.5):.0f} ms, p99 {1000 * _percentile(delays, 0.99):.0f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the worker process (the bench itself): {peak:.0f} MiB")


def _log_like_the_worker() -> None:
    """The worker's own logging (a JSON line per message, at info), written to /dev/null: the
    cost of logging is part of the worker's CPU, its lines are not for the reader of the table."""
    stderr = sys.stderr
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log's file for the whole run
    try:
        configure("json", "info")
    finally:
        sys.stderr = stderr


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    ceiling_rate, baseline_rate, worker_rate = rows[0].rate, rows[1].rate, rows[2].rate
    print("| run | events | events/s | API calls/event | requests in flight mean / max | "
          "CPU ms/event | test server CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        calls = f"{r.api_calls:.3f}" if r.api_calls is not None else "-"
        cpu = f"{r.cpu_ms:.2f}" if r.cpu_ms is not None and r is not rows[0] else "-"
        server = f"{r.server_cpu_s:.1f}" if r.server_cpu_s is not None else "-"
        print(f"| {r.label} | {r.events} | {r.rate:.0f} | {calls} | {r.in_flight} | {cpu} | {server} |")
    print(f"\nworker ÷ baseline: {worker_rate / baseline_rate:.1f}x   "
          f"worker ÷ ceiling: {worker_rate / ceiling_rate:.3f}")


if __name__ == "__main__":
    main()
