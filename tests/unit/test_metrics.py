"""The metrics and health endpoint the kubelet and Prometheus read."""

from __future__ import annotations

import pytest

from tests.http import get
from worker.metrics import Metrics, serve


@pytest.mark.parametrize(("consuming", "status"), [(True, 200), (False, 503)])
def test_readiness_follows_the_consumer_and_liveness_is_always_ok(consuming: bool, status: int) -> None:
    metrics = Metrics()
    metrics.events.labels(outcome="parked").inc()
    server = serve(metrics, 0, ready=lambda: (consuming, "why"))
    port = server.server_address[1]
    try:
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz")[1] == "why\n"
        assert get(port, "/readyz")[0] == status
        code, body = get(port, "/metrics")
        assert code == 200
        assert 'winback_events_total{outcome="parked"} 1.0' in body
        assert get(port, "/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
