"""The bridge's probes and metrics over HTTP, while the Pub/Sub service and the broker come and go."""

from __future__ import annotations

import socket
import subprocess

from tests.http import get
from tests.integration.broker import Names
from tests.pubsub.conftest import RunningBridge, bridge_settings
from tests.pubsub.server import PubSubServer
from tests.pubsub.test_bridge import WAIT, _complaint, _queued
from tests.sfserver import SalesforceServer
from tests.waiting import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _close_broker_connections(marker: str) -> int:
    """Close, from the broker's side, every connection whose client properties name ``marker``."""
    listed = subprocess.run(["rabbitmqctl", "list_connections", "-q", "pid", "client_properties"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    pids = [line.split("\t")[0] for line in listed.splitlines() if marker in line]
    for pid in pids:
        subprocess.run(["rabbitmqctl", "close_connection", pid, "closed by the bridge probe test"],
                       capture_output=True, timeout=60, check=True)
    return len(pids)


def test_ready_only_while_subscribed_and_live_while_reconnecting(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    port = _free_port()
    with RunningBridge(bridge_settings(org, pubsub, names, metrics_port=port)):
        assert wait_until(lambda: get(port, "/readyz") == (200, "ready\n"), timeout=WAIT,
                          what="the bridge ready")
        _complaint(org, 1)
        wait_until(lambda: _queued(names), timeout=WAIT, what="the complaint on the queue")
        status, metrics = get(port, "/metrics")
        pubsub.go_away()
        not_ready = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(get(port, "/readyz")),
                               timeout=WAIT, what="readiness to fail while the service is away")
        live_meanwhile = get(port, "/healthz")
        pubsub.come_back()
        wait_until(lambda: get(port, "/readyz") == (200, "ready\n"), timeout=WAIT,
                   what="ready again once the service is back")
    assert status == 200
    assert 'winback_bridge_changes_received_total{topic="/data/ChangeEvents"}' in metrics
    assert 'winback_bridge_events_published_total{type="crm.complaint.logged"} 1.0' in metrics
    assert 'winback_bridge_subscribed{topic="/data/ChangeEvents"} 1.0' in metrics
    assert 'winback_bridge_replay_lag_seconds{topic="/data/ChangeEvents"}' in metrics
    assert "winback_bridge_changes_unmapped_total" in metrics
    assert not_ready[1].startswith("/data/ChangeEvents: not subscribed")
    assert live_meanwhile == (200, "ok\n")  # reconnecting is its job: no restart


def test_a_broker_connection_closed_under_it_is_opened_again_and_nothing_is_lost(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    port = _free_port()
    settings = bridge_settings(org, pubsub, names, metrics_port=port)
    with RunningBridge(settings) as bridge:
        wait_until(lambda: get(port, "/readyz") == (200, "ready\n"), timeout=WAIT,
                   what="the bridge ready")
        _complaint(org, 1)
        wait_until(lambda: len(_queued(names)) == 1, timeout=WAIT, what="the first complaint")
        assert _close_broker_connections(settings.bridge_replay_queue) == 1
        wait_until(lambda: bridge.metrics.value("winback_bridge_reconnects_total", reason="broker") >= 1,
                   timeout=WAIT, what="the bridge to notice, between changes, that the broker closed it")
        _complaint(org, 2)
        ids = wait_until(lambda: (lambda q: q if len(q) >= 2 else None)(
            [e["id"] for e in _queued(names)]), timeout=WAIT, what="the complaint after the broker")
        assert get(port, "/readyz") == (200, "ready\n")
        # The stream of the subscription the broker cut short was cancelled, not left running.
        wait_until(lambda: pubsub.open_streams == 1, timeout=WAIT, what="one stream open")
    assert len(ids) == len(set(ids)) == 2
