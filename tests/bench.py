"""``make bench``: the worker's throughput against a bare consumer and a hand-written baseline.

One process tree, the real RabbitMQ, the project's Salesforce test server (``tests.benchserver``,
its own process, every call held ``--latency`` seconds):

(a) ceiling: a bare pika consumer acking what it gets;
(b) baseline: the same events and handlers, then a 32-thread pool making one simple-salesforce
    call per record each event writes (what a user would write by hand);
(c) the worker, default rules, against the test server: lapsed events plus complaints and
    meetings of the same accounts in proportion, run as production runs it, a ``winback run``
    process measured from outside (``tests.bench_worker``: its own CPU and peak RSS);
(c') the same with larger batches (``--large-batch``, WINBACK_BATCH_SIZE), for the calls per event;
(d) the worker on the embedded CRM;
then p50/p99 publish→commit (to the worker's ``event_handled`` line) with events offered at
``--rate`` per second to the worker on the test server. Ratios are what to read: the machine is
shared, so absolute figures move.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import requests
from simple_salesforce import Salesforce

from handlers.actions import PublishEvent
from handlers.events import parse_event
from handlers.registry import handle
from tests.bench_worker import Run, run_worker
from tests.benchserver import account_id, contact_id
from tests.integration.broker import channel, delete_all, new_names, require_broker
from tests.integration.harness import lapsed, make_settings
from tests.sfserver.cast import ALICE
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
    peak_rss_mib: float | None = None
    call_ms: float | None = None  # at the test server, arrival to answer

    @property
    def rate(self) -> float:
        return self.events / self.seconds


class BenchServer:
    """The test org in its own process (``tests.benchserver``): its login facts, and its figures
    (API calls, requests in flight, its CPU) part by part."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self._proc, self._stdin, self._stdout = proc, proc.stdin, proc.stdout
        self.info: dict[str, Any] = json.loads(self._stdout.readline())
        self.figures: dict[str, Any] = {}  # of the last part, once the server has stopped

    def end_part(self) -> dict[str, Any]:
        """The figures of the part of the run since the previous one ended (or since the start)."""
        self._stdin.write("\n")
        self._stdin.flush()
        figures: dict[str, Any] = json.loads(self._stdout.readline())
        return figures

    def stop(self) -> None:
        self._stdin.close()
        line = self._stdout.readline()
        self._proc.wait(timeout=60)
        self.figures.update(json.loads(line) if line else {})


@contextmanager
def test_server(latency: float, events: int) -> Iterator[BenchServer]:
    """The test org with the accounts ``events`` name; its figures are read once it stopped."""
    accounts = str(accounts_for(events))
    proc = subprocess.Popen([sys.executable, "-m", "tests.benchserver", str(latency), accounts], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = BenchServer(proc)
    try:
        yield server
    finally:
        server.stop()


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
                stamps[event["id"]] = time.time()  # against the worker's log timestamps
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
    with test_server(latency, count) as server:
        info = server.info
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
    figures = server.figures
    return Row("(b) baseline: 32 threads, 1 call per record", count, elapsed,
               figures["api_calls"] / count, _in_flight(figures), 1000 * cpu / count,
               figures["cpu_seconds"], call_ms=figures["call_ms"])


def _in_flight(figures: dict[str, Any]) -> str:
    return f"{figures['in_flight_mean']:.1f} / {figures['in_flight_max']}"


def worker_run(label: str, count: int, latency: float | None, rate: float | None = None,
               **overrides: Any) -> tuple[Row, Run, dict[str, float]]:
    """The worker as production runs it: a ``winback run`` process (``tests.bench_worker``), on
    ``count`` events published before it starts, or offered at ``rate`` per second once it
    consumes (then the publish times are returned, epoch seconds by event id)."""
    require_broker()
    names = new_names()
    stamps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, _maybe_server(latency, count) as server:
        extra = _salesforce_settings(server.info) if server else {}
        # The worker's own batching defaults, not the integration tests' quicker ones.
        defaults = {"batch_wait_ms": Settings.model_fields["batch_wait_ms"].default,
                    "rules": ROOT / "config" / "rules.yaml", "log_level": "info"}
        settings = make_settings(names, Path(tmp), log_format="json",
                                 **(defaults | extra | overrides))
        idle = run_worker(settings, Path(tmp) / "idle.log", timeout=300)  # start-up and exit
        if server:  # the server's figures are the run's alone: the start-up's calls left out
            server.end_part()
        events = events_for(count, settings.queue[-8:])
        if rate is None:
            publish(settings.exchange, events)
        offer = None if rate is None else lambda: publish(settings.exchange, events, rate, stamps)
        run = run_worker(settings, Path(tmp) / "worker.log", timeout=3600, once_consuming=offer)
    delete_all(names, settings.retry_delays)
    missing = sum(1 for e in events if e["id"] not in run.handled)
    if missing:
        raise RuntimeError(f"{label}: {missing} of {count} events were not handled")
    figures = server.figures if server else {}
    calls = figures.get("api_calls")
    row = Row(label, count, run.seconds, calls / count if calls else None,
              _in_flight(figures) if figures else "-",
              1000 * max(run.cpu_seconds - idle.cpu_seconds, 0.0) / count,
              figures.get("cpu_seconds"), run.peak_rss_mib, figures.get("call_ms"))
    return row, run, stamps


@contextmanager
def _maybe_server(latency: float | None, events: int) -> Iterator[BenchServer | None]:
    if latency is None:
        yield None
        return
    with test_server(latency, events) as server:
        yield server


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
    print(f"winback bench: RabbitMQ on loopback, test server at {args.latency * 1000:.0f} ms/call, "
          f"{os.cpu_count()} cores\n", flush=True)
    rows = [ceiling(args.events), baseline(args.baseline_events, args.latency)]
    rows.append(worker_run("(c) worker, Salesforce test server", args.events, args.latency)[0])
    if args.large_batch:
        rows.append(worker_run(f"(c') worker, batches of {args.large_batch}", args.events,
                               args.latency, batch_size=args.large_batch)[0])
    rows.append(worker_run("(d) worker, embedded CRM", args.events, None)[0])
    offered = int(args.rate * args.rate_seconds)
    _, run, stamps = worker_run("latency", offered, args.latency, rate=args.rate)
    delays = [run.handled[e] - t for e, t in stamps.items() if e in run.handled]
    _print(rows, args)
    print(f"\npublish→commit at {args.rate:.0f} events/s offered ({len(delays)} of {offered} committed): "
          f"p50 {1000 * _percentile(delays, 0.5):.0f} ms, p99 {1000 * _percentile(delays, 0.99):.0f} ms")


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    ceiling_rate, baseline_rate, worker_rate = rows[0].rate, rows[1].rate, rows[2].rate
    print("| run | events | events/s | API calls/event | requests in flight mean / max | "
          "CPU ms/event | peak RSS MiB | test server CPU s | test server ms/call |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        calls = f"{r.api_calls:.3f}" if r.api_calls is not None else "-"
        cpu = f"{r.cpu_ms:.2f}" if r.cpu_ms is not None and r is not rows[0] else "-"
        server = f"{r.server_cpu_s:.1f}" if r.server_cpu_s is not None else "-"
        rss = f"{r.peak_rss_mib:.0f}" if r.peak_rss_mib is not None else "-"
        call = f"{r.call_ms:.0f}" if r.call_ms is not None else "-"
        print(f"| {r.label} | {r.events} | {r.rate:.0f} | {calls} | {r.in_flight} | {cpu} | {rss} "
              f"| {server} | {call} |")
    print(f"\nworker ÷ baseline: {worker_rate / baseline_rate:.1f}x   "
          f"worker ÷ ceiling: {worker_rate / ceiling_rate:.3f}")


if __name__ == "__main__":
    main()
