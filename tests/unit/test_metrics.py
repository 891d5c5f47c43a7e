"""The metrics and health endpoint the kubelet and Prometheus read."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from worker.metrics import Metrics, serve


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@pytest.mark.parametrize(("consuming", "status"), [(True, 200), (False, 503)])
def test_readiness_follows_the_consumer_and_liveness_is_always_ok(consuming: bool, status: int) -> None:
    metrics = Metrics()
    metrics.events.labels(outcome="parked").inc()
    server = serve(metrics, 0, ready=lambda: (consuming, "why"))
    port = server.server_address[1]
    try:
        assert _get(port, "/healthz") == (200, "ok\n")
        assert _get(port, "/readyz")[1] == "why\n"
        assert _get(port, "/readyz")[0] == status
        code, body = _get(port, "/metrics")
        assert code == 200
        assert 'winback_events_total{outcome="parked"} 1.0' in body
        assert _get(port, "/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
