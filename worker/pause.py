"""Pausing consumption while the CRM refuses the worker itself, and resuming once it accepts it.

An expired fixed token, a refused login or a lost permission would fail every event alike, so
instead of retrying and parking each one, the first such failure pauses consumption: the message
goes back to its queue, deliveries not started are released, ``/readyz`` fails, one error line
says what to fix, and a thread asks the CRM again (``Crm.check``) with back-off. Checking the CRM
rather than retrying a message keeps the queue's delivery counts (``x-delivery-limit``) untouched.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import structlog

from handlers.errors import WinbackError
from worker.crm.port import Crm
from worker.metrics import Metrics
from worker.policy import Pause
from worker.stop import StopToken

WHAT_TO_DO = ("the CRM refuses the worker: renew WINBACK_SALESFORCE_ACCESS_TOKEN (or use the JWT "
              "bearer flow), check the connected app and the key, or grant the Winback_Integration "
              "permission set; consumption resumes by itself once the CRM accepts the worker")


class Consumption(Protocol):
    """What the pause needs of the AMQP session."""

    def pause_consumption(self) -> None: ...
    def resume_consumption(self) -> None: ...


class CrmAccessPause:
    """``refused`` pauses (once, however many messages report it); a thread resumes."""

    def __init__(self, crm: Crm, metrics: Metrics, stop: StopToken, first: float = 1.0,
                 maximum: float = 300.0) -> None:
        self._crm, self._metrics, self._stop = crm, metrics, stop
        self._first, self._maximum = first, maximum
        self._lock = threading.Lock()
        self._paused = False
        self._log = structlog.get_logger("winback.pause")

    def paused(self) -> bool:
        return self._paused

    def refused(self, pause: Pause, consumption: Consumption) -> None:
        """Main thread, from a settle: pause unless already paused, and start checking."""
        with self._lock:
            if self._paused:
                return
            self._paused = True
        consumption.pause_consumption()
        self._metrics.paused.set(1)
        self._metrics.crm_access_refused.inc()
        self._log.error("consumption_paused", error=pause.error, reason=pause.reason, action=WHAT_TO_DO,
                        retry_in=self._first)
        threading.Thread(target=self._recheck, args=(consumption,), name="winback-crm-recheck",
                         daemon=True).start()

    def _recheck(self, consumption: Consumption) -> None:
        delay = self._first
        while self._wait(delay):
            try:
                self._crm.check()
            except (WinbackError, OSError) as exc:  # ConfigError (still refused) or unreachable
                delay = min(delay * 2, self._maximum)
                self._log.info("crm_still_refusing", error=str(exc), retry_in=delay)
                continue
            with self._lock:
                self._paused = False
            self._metrics.paused.set(0)
            consumption.resume_consumption()
            self._log.info("consumption_resumed")
            return

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` in short steps; False once the worker is stopping."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop.is_set():
                return False
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        return not self._stop.is_set()
