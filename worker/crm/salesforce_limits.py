"""The org's daily API allowance, read from ``Sforce-Limit-Info``, and the slow-down near its floor."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import requests
import structlog

_USAGE = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")


class ApiAllowance:
    """Remembers the last ``api-usage=used/total`` seen and paces calls once the rest is low.

    Below ``floor`` remaining calls, each call first waits in proportion to how far below the
    floor the org is: nothing at the floor, ``max_pause`` seconds with nothing left. The worker
    keeps going, more slowly, instead of spending the org's last calls that people's own
    integrations need; Salesforce itself answers REQUEST_LIMIT_EXCEEDED at zero.
    """

    def __init__(
        self, floor: int, max_pause: float = 5.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.floor = floor
        self.max_pause = max_pause
        self.used: int | None = None
        self.total: int | None = None
        self._sleep = sleep
        self._log = structlog.get_logger("winback.salesforce")

    @property
    def remaining(self) -> int | None:
        if self.used is None or self.total is None:
            return None
        return max(self.total - self.used, 0)

    def observe(self, header: str | None) -> None:
        """Take the usage from one response's ``Sforce-Limit-Info`` header, if it has one."""
        match = _USAGE.search(header or "")
        if match:
            self.used, self.total = int(match[1]), int(match[2])

    def on_response(self, response: requests.Response, *_: Any, **__: Any) -> None:
        """A requests response hook: every response, errors included, updates the figure."""
        self.observe(response.headers.get("Sforce-Limit-Info"))

    def pause_seconds(self) -> float:
        remaining = self.remaining
        if remaining is None or self.floor <= 0 or remaining >= self.floor:
            return 0.0
        return self.max_pause * (self.floor - remaining) / self.floor

    def before_call(self) -> None:
        """Wait before an API call when the org is below the floor."""
        pause = self.pause_seconds()
        if pause <= 0:
            return
        self._log.warning(
            "salesforce_slowed_down", remaining=self.remaining, floor=self.floor, pause=pause
        )
        self._sleep(pause)
