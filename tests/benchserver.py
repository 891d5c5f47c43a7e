"""``make bench`` helper: the Salesforce test server in its own process, so its CPU is its own.

Prints one JSON line with what a client needs to log in, then serves until stdin closes, then
prints one JSON line of figures: API calls, requests in flight (mean and max, sampled every 5 ms)
and the CPU seconds this process used.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
from pathlib import Path

from tests.sfserver import SalesforceServer


def _sample(server: SalesforceServer, stop: threading.Event, into: list[int]) -> None:
    seen = 0
    while not stop.wait(0.005):
        calls = server.calls  # appended under the server's lock; a stale read is fine for a sample
        if len(calls) > seen:
            into.append(sum(1 for c in calls[max(0, len(calls) - 400):] if c.status == 0))
            seen = len(calls) - 400 if len(calls) > 400 else 0


def main() -> None:
    latency = float(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp, SalesforceServer(Path(tmp)) as server:
        server.faults.latency(latency)
        print(json.dumps({
            "url": server.url, "client_id": server.app.client_id, "username": server.app.username,
            "key_file": str(server.app.key_file), "ca_file": str(server.ca_file),
            "api_version": server.api_version, "token": server.issue_token(),
        }), flush=True)
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=_sample, args=(server, stop, samples), daemon=True)
        sampler.start()
        sys.stdin.read()
        stop.set()
        sampler.join()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy = [s for s in samples if s] or [0]
        print(json.dumps({
            "api_calls": server.api_calls, "in_flight_mean": sum(busy) / len(busy),
            "in_flight_max": max(busy), "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }), flush=True)


if __name__ == "__main__":
    main()
