"""SIGTERM and SIGINT stop the worker gracefully, without ever taking a lock in the handler.

A Python signal handler runs on the main thread between two bytecodes of whatever it interrupted,
and that code may hold a lock: structlog's write lock while it is blocked writing to a full stderr
pipe (a stalled log shipper), or an ``Event``'s condition. A handler that logged, or set an
``Event``, could wait on that lock forever and the pod would hang until SIGKILL. So the handler
only assigns an attribute (``StopToken.request_from_signal``); the main loop does the rest.
``tests/unit/test_signals.py`` puts a real process in that state.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from worker.stop import StopToken


def stop_on_signals(
    stop: StopToken, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Make ``signals`` ask ``stop`` for a graceful stop. Call on the main thread."""

    def handler(signum: int, _frame: object) -> None:
        stop.request_from_signal(signal.Signals(signum).name)

    for sig in signals:
        signal.signal(sig, handler)
