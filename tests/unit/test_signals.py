"""SIGTERM must stop the worker even when it arrives in the middle of a log write.

A signal handler runs on the main thread between two bytecodes of whatever it interrupted. When
stderr is a full pipe (a log shipper that stalls, a test that reads late), the main thread sits in
``write`` holding structlog's write lock; a handler that logged would wait on that lock forever and
the pod would hang until SIGKILL. This test puts a real child process in exactly that state.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import termios
import threading
from pathlib import Path

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import structlog
from worker import logs
from worker.signals import stop_on_signals
from worker.stop import StopToken

logs.configure("json", "info")
stop = StopToken()
stop_on_signals(stop)
log = structlog.get_logger("filler")
while not stop.stopping():
    log.info("filler", text="x" * 500)
"""


def _buffered(fd: int) -> int:
    raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(raw, sys.byteorder)


def test_sigterm_stops_the_worker_while_it_is_blocked_writing_a_log_line() -> None:
    read_end, write_end = os.pipe()
    capacity = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINBACK_")}
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_all(read_end, received), daemon=True)
    try:
        # Full: the next line (≈600 bytes) cannot fit, so the child is blocked in write().
        wait_until(lambda: _buffered(read_end) > capacity - 600 or child.poll() is not None,
                   what="the child to fill its stderr pipe")
        assert child.poll() is None, "the child exited before the test could signal it"
        child.send_signal(signal.SIGTERM)
        reader.start()  # only now does anyone read the pipe, as a stalled log shipper would
        returncode = child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if reader.ident is not None:
            reader.join(timeout=10)
        if not reader.is_alive():
            os.close(read_end)
    assert returncode == 0, received[-2000:].decode(errors="replace")
    assert re.search(rb'"signal":\s*"SIGTERM",\s*"event":\s*"stop_requested"', received)


def _read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into.extend(chunk)
