"""``make bench`` helper: the Salesforce test server in its own process, so its CPU is its own.

The org is strict, like Salesforce: it holds ``--accounts`` numbered accounts (``account_id``),
each with a contact (``contact_id``), owned by an active user, and the bench's events name only
those. Prints one JSON line with what a client needs to log in, then serves until stdin closes. Each
line read on stdin ends a part of the run, and closing stdin the last: for each part it prints one
JSON line of figures: API calls, the mean time from a call's arrival to its answer (the latency set
plus the org's own work, which shares the machine's cores with the worker), requests in flight
(mean and max, sampled every 5 ms) and the CPU seconds this process used, in that part alone (so a
worker's start-up run can be left out).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
from pathlib import Path

from tests.sfserver import SalesforceServer
from tests.sfserver.cast import ALICE, NUMBERED_ACCOUNTS
from tests.sfserver.org import Org


def account_id(n: int) -> str:
    """The ``n``-th numbered account of the test org (``tests.sfserver.cast`` seeds the first ones)."""
    return f"001{n:012d}AAA"


def contact_id(n: int) -> str:
    return f"003{n:012d}AAA"


def seed_accounts(org: Org, count: int) -> None:
    """Numbered accounts and contacts beyond those every test org has, up to ``count``."""
    for n in range(NUMBERED_ACCOUNTS, count):
        org.seed("Account", Id=account_id(n), Name=f"Customer {n}", OwnerId=ALICE)
        org.seed("Contact", Id=contact_id(n), LastName=f"Contact {n}")


def _sample(server: SalesforceServer, stop: threading.Event, into: list[int]) -> None:
    while not stop.wait(0.005):
        into.append(server.unanswered)  # a stale read is fine for a sample


def main() -> None:
    latency, accounts = float(sys.argv[1]), int(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp, SalesforceServer(Path(tmp)) as server:
        seed_accounts(server.org, accounts)
        server.faults.latency(latency)
        print(json.dumps({
            "url": server.url, "client_id": server.app.client_id, "username": server.app.username,
            "key_file": str(server.app.key_file), "ca_file": str(server.ca_file),
            "api_version": server.api_version, "token": server.issue_token(),
        }), flush=True)
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=_sample, args=(server, stop, samples), daemon=True)
        sampler.start()
        part = _Part(server, samples)
        for _ in sys.stdin:
            part = part.end()
        stop.set()
        sampler.join()
        part.end()


class _Part:
    """A part of the run, from where the previous one ended: its figures are what changed since."""

    def __init__(self, server: SalesforceServer, samples: list[int]) -> None:
        self._server, self._samples = server, samples
        self._calls, self._sampled, self._cpu = server.api_calls, len(samples), _cpu_seconds()
        self._answered, self._seconds = len(server.calls) - server.unanswered, server.answered_seconds

    def end(self) -> _Part:
        """Print this part's figures; the next part starts now."""
        busy = [s for s in self._samples[self._sampled:] if s] or [0]
        answered = len(self._server.calls) - self._server.unanswered - self._answered
        seconds = self._server.answered_seconds - self._seconds
        print(json.dumps({
            "call_ms": 1000 * seconds / answered if answered else 0.0,
            "api_calls": self._server.api_calls - self._calls,
            "in_flight_mean": sum(busy) / len(busy), "in_flight_max": max(busy),
            "cpu_seconds": _cpu_seconds() - self._cpu,
        }), flush=True)
        return _Part(self._server, self._samples)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
