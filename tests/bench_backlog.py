"""``make bench``: the worker's memory does not grow with the backlog in front of it.

For each backlog size (default 10,000 and 100,000 lapsed events, waiting in the partitions before
the worker starts), one ``winback run`` process on the embedded CRM handles the first
``--handle`` events; its peak RSS (``VmHWM``) is read while it works. The prefetch bounds what a
worker holds, so the peaks should match: the table prints both and their ratio.

    python -m tests.bench_backlog [--sizes 10000 100000] [--handle 5000]
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import tempfile
import time
from pathlib import Path

import pika

from handlers.actions import REVISION_MARKER_TYPE
from tests.integration.broker import channel, delete_all, new_names, require_broker, work_count
from tests.integration.harness import lapsed, make_settings
from tests.pubsub.processes import Process, environment
from tests.waiting import wait_until
from worker.topology import account_headers

ROOT = Path(__file__).parents[1]


def fill(exchange: str, count: int) -> None:
    """Publish ``count`` lapsed events without confirms (the caller waits for the count)."""
    with channel() as ch:
        for n in range(count):
            event = lapsed(f"backlog-{n}", f"ACC-{n % 20000}")
            ch.basic_publish(exchange, event["type"], json.dumps(event).encode(),
                             pika.BasicProperties(delivery_mode=2, headers=account_headers(event)))


def handled(crm: Path) -> int:
    if not crm.exists():
        return 0
    db = sqlite3.connect(crm, timeout=5)
    try:
        row = db.execute("SELECT count(*) FROM ledger WHERE event_type != ?",
                         (REVISION_MARKER_TYPE,)).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # the worker has not created its tables yet
        return 0
    finally:
        db.close()


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run(backlog: int, handle: int) -> tuple[int, int, float]:
    """(events handled when measured, peak RSS in KiB, seconds) for one backlog size."""
    names = new_names()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(names, Path(tmp), rules=ROOT / "config" / "rules.yaml",
                                 log_format="json", log_level="warning", partitions=8)
        try:
            fill(settings.exchange, backlog)
            wait_until(lambda: work_count(settings) >= backlog, timeout=300, what="the backlog")
            started, peak = time.monotonic(), 0
            with Process(["run"], environment(settings), Path(tmp) / "worker.log") as worker:
                def enough() -> bool:
                    nonlocal peak
                    peak = max(peak, peak_rss_kib(worker.popen.pid))
                    return handled(settings.local_crm_path) >= handle
                wait_until(enough, timeout=900, what=f"{handle} events handled")
                done, seconds = handled(settings.local_crm_path), time.monotonic() - started
                worker.popen.send_signal(signal.SIGTERM)
                worker.popen.wait(timeout=60)
            return done, peak, seconds
        finally:
            delete_all(names, settings.retry_delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--handle", type=int, default=5_000)
    args = parser.parse_args()
    require_broker()
    rows = [(size, *run(size, args.handle)) for size in args.sizes]
    print(f"\nworker memory against the backlog (first {args.handle} events handled, embedded CRM)")
    print(f"{'backlog':>10} {'handled':>8} {'events/s':>9} {'peak RSS MiB':>13} {'÷ first':>8}")
    first = rows[0][2]
    for size, done, peak, seconds in rows:
        print(f"{size:>10,} {done:>8,} {done / seconds:>9.0f} {peak / 1024:>13.1f} "
              f"{peak / first:>8.2f}")


if __name__ == "__main__":
    main()
