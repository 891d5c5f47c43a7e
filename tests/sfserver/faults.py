"""Fault injection for the test org: latency, error replies, dropped connections, per-record errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.sfserver.org import SfError

LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records: {id}"


@dataclass
class _Rule:
    path: str | None
    times: int | None  # None: every matching request

    def take(self, path: str) -> bool:
        if self.path is not None and self.path not in path:
            return False
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass
class _Reply(_Rule):
    status: int = 500
    body: Any = None  # None: drop the connection without answering


@dataclass
class _Delay(_Rule):
    seconds: float = 0.0
    after: bool = False  # after the request was processed (and committed)


@dataclass
class _RecordFault:
    sobject: str
    error: SfError
    when: Callable[[dict[str, Any]], bool]
    times: int | None


class Faults:
    """What the server does wrong, and how often. Every rule matches a path substring."""

    def __init__(self, stop: threading.Event, hang_seconds: float = 5.0) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._replies: list[_Reply] = []
        self._delays: list[_Delay] = []
        self._records: list[_RecordFault] = []
        self.hang_seconds = hang_seconds

    def respond(self, status: int, code: str, message: str, *, path: str | None = None,
                times: int | None = 1) -> None:
        """Answer matching requests with a Salesforce error instead of processing them."""
        body = [{"message": message, "errorCode": code}]
        with self._lock:
            self._replies.append(_Reply(path, times, status, body))

    def limit_exceeded(self, *, path: str | None = None, times: int | None = 1) -> None:
        self.respond(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", path=path,
                     times=times)

    def unavailable(self, *, path: str | None = None, times: int | None = 1) -> None:
        self.respond(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.", path=path,
                     times=times)

    def disconnect(self, *, path: str | None = None, times: int | None = 1) -> None:
        """Close the connection without an answer: the client sees a connection error."""
        with self._lock:
            self._replies.append(_Reply(path, times, 0, None))

    def latency(self, seconds: float, *, path: str | None = None, times: int | None = None,
                after: bool = False) -> None:
        with self._lock:
            self._delays.append(_Delay(path, times, seconds, after))

    def timeout(self, *, path: str | None = None, times: int | None = 1, after: bool = True) -> None:
        """Hold the answer longer than any client timeout; by default after committing."""
        self.latency(self.hang_seconds, path=path, times=times, after=after)

    def record_error(self, sobject: str, code: str, message: str, *,
                     when: Callable[[dict[str, Any]], bool] = lambda _: True,
                     times: int | None = 1, fields: tuple[str, ...] = ()) -> None:
        """Fail writes of matching records (alone, in a graph or in a composite) with ``code``."""
        with self._lock:
            self._records.append(_RecordFault(sobject, SfError(400, code, message, fields),
                                              when, times))

    def lock_row(self, sobject: str, *, times: int | None = 1,
                 when: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
        self.record_error(sobject, "UNABLE_TO_LOCK_ROW", LOCK_MESSAGE.format(id="001000000000001"),
                          when=when, times=times)

    def reply_for(self, path: str) -> _Reply | None:
        with self._lock:
            return next((r for r in self._replies if r.take(path)), None)

    def wait(self, path: str, after: bool) -> None:
        with self._lock:
            seconds = sum(d.seconds for d in self._delays if d.after == after and d.take(path))
        if seconds:
            self._stop.wait(seconds)  # returns at once when the server stops

    def check_record(self, sobject: str, values: dict[str, Any]) -> None:
        """An Org ``before_write`` hook: raise the first matching record fault."""
        with self._lock:
            for fault in self._records:
                if fault.sobject != sobject or not fault.when(values):
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                raise fault.error
