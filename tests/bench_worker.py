"""``make bench``: one ``winback run`` process, measured from outside, as production runs it.

The worker gets its settings from ``WINBACK_*`` variables and logs its JSON line per message (at
info, to a file); the bench reads back what it needs and nothing else:

- events/s: the events ÷ the time from the worker's ``consuming`` line to its last
  ``event_handled`` line (start-up, the CRM login and the idle wait before exit are left out);
- CPU ms/event and peak RSS: the process's own ``wait4`` rusage, less the CPU of a start-up and
  exit with nothing to do (measured the same way, just before), so they are the worker's alone;
- publish→commit: the publish time of each event against the timestamp of its ``event_handled``
  line, which the worker writes after the CRM committed its writes and the broker took the ack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.pubsub.processes import environment
from tests.waiting import wait_until
from worker.settings import Settings

ROOT = Path(__file__).parents[1]
IDLE = 0.5  # --exit-when-idle: seconds of an empty queue before the worker exits


@dataclass
class Run:
    """What one worker process did: handled events, their timestamps, its CPU and memory."""

    handled: dict[str, float] = field(default_factory=dict)  # event id → epoch seconds
    consuming_at: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    returncode: int = 0

    @property
    def seconds(self) -> float:
        return max(self.handled.values()) - self.consuming_at if self.handled else 0.0


def run_worker(settings: Settings, log: Path, timeout: float,
               once_consuming: Callable[[], None] | None = None) -> Run:
    """Run ``winback run --exit-when-idle`` with ``settings`` until it exits; ``once_consuming``
    runs (in a thread) once the worker has subscribed, e.g. to publish at an offered rate."""
    with log.open("wb") as out:
        popen = subprocess.Popen([sys.executable, "-m", "worker", "run", "--exit-when-idle", str(IDLE)],
                                 env=environment(settings), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT)
    publisher = None
    if once_consuming is not None:
        wait_until(lambda: _has_line(log, "consuming") or _exited(popen.pid), timeout=120,
                   what="the worker to subscribe")
        publisher = threading.Thread(target=once_consuming, daemon=True)
        publisher.start()
    status, usage = _wait4(popen, timeout)
    if publisher is not None:
        publisher.join(timeout=60)
    run = _read_log(log)
    run.cpu_seconds = usage.ru_utime + usage.ru_stime
    run.peak_rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
    run.returncode = os.waitstatus_to_exitcode(status)
    if run.returncode != 0:
        raise RuntimeError(f"the worker exited with {run.returncode}; its log: {log}\n"
                           + log.read_text(errors="replace")[-3000:])
    return run


def _wait4(popen: subprocess.Popen[bytes], timeout: float) -> tuple[int, os.struct_rusage]:
    """Reap the worker with its own resource usage (``Popen.wait`` would discard it)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            popen.kill()
            raise RuntimeError(f"the worker did not finish within {timeout:.0f} s")
        time.sleep(0.1)  # polling a child's exit, with a deadline


def _exited(pid: int) -> bool:
    """Has the child exited? (Without reaping it: ``_wait4`` still needs its rusage.)"""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _has_line(log: Path, event: str) -> bool:
    return re.search(rf'"event":\s*"{event}"', log.read_text(errors="replace")) is not None


def _read_log(log: Path) -> Run:
    run = Run()
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        kind = entry.get("event")
        if kind == "event_handled" and "event_id" in entry:
            run.handled[entry["event_id"]] = _epoch(entry["timestamp"])
        elif kind == "consuming" and not run.consuming_at:
            run.consuming_at = _epoch(entry["timestamp"])
    return run


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
