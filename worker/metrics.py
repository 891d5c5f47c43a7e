"""Prometheus metrics and the health endpoint, on an explicit registry (no global state)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from handlers.outcome import Signal


class Metrics:
    """Every metric the worker exports. Pass one instance down; tests make their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("winback_events", "Messages settled, by outcome.", ["outcome"], registry=r)
        self.suppressed = Counter(
            "winback_actions_suppressed", "Actions not written, by reason.", ["action"], registry=r
        )
        self.batch_seconds = Histogram(
            "winback_batch_seconds", "Time to handle one batch, CRM writes included.", registry=r
        )
        self.broker_reconnects = Counter(
            "winback_broker_reconnects", "Times the AMQP connection was lost.", registry=r
        )
        self.rules_info = Info("winback_rules", "The rules version in force.", registry=r)
        self.rules_refused = Counter(
            "winback_rules_reloads_refused", "Rules files refused on reload.", registry=r
        )
        self.connected = Gauge("winback_broker_connected", "1 while consuming.", registry=r)
        self.in_flight = Gauge(
            "winback_in_flight", "Deliveries received and not yet settled (at most the prefetch).",
            registry=r,
        )
        self.backoff = Gauge(
            "winback_backoff_seconds", "The longest a lane waits before its next batch after "
            "batches that were retried whole (the CRM down or throttling).", registry=r,
        )
        self.held_accounts = Gauge(
            "winback_held_accounts", "Accounts whose later events wait behind one in a retry queue.",
            registry=r,
        )
        self.paused = Gauge(
            "winback_consumption_paused", "1 while consumption is paused: the CRM refuses the worker.",
            registry=r,
        )
        self.crm_access_refused = Counter(
            "winback_crm_access_refused", "Times the CRM refused the worker itself (pauses).", registry=r
        )
        self.plans = Gauge(
            "winback_plans", "Win-back plans in the CRM: opened, won, lost, open; sampled.", ["state"],
            registry=r,
        )
        self.complaint_acks = Gauge(
            "winback_complaint_acknowledgements",
            "Complaint acknowledgements by verdict: in_sla, late, not_yet; sampled.", ["verdict"],
            registry=r,
        )
        self.queue_messages = Gauge(
            "winback_queue_messages", "Messages ready in each queue (work, retry, parked, timer: "
            "the timers waiting in each delay tier), sampled.",
            ["queue", "role"], registry=r,
        )
        self.crm_api_remaining = Gauge(
            "winback_crm_api_remaining", "The CRM's remaining daily API calls, last seen (-1: unknown).",
            registry=r,
        )
        self.crm_api_floor = Gauge(
            "winback_crm_api_floor", "Remaining API calls below which the worker slows down.", registry=r
        )
        self.timers_scheduled = Counter(
            "winback_timers_scheduled", "Timers set by handled events, by kind (unless_done, "
            "unless_held).", ["kind"], registry=r,
        )
        self.timers_fired = Counter(
            "winback_timers_fired", "Timers that came due, by outcome: met (the step was done), "
            "acted (escalated, nudged), skipped (plan closed, already fired), duplicate (given "
            "again after it was handled: nothing done).", ["outcome"],
            registry=r,
        )
        self.sla_breaches = Counter(
            "winback_sla_breaches", "Acknowledgements not done by their deadline, by severity.",
            ["severity"], registry=r,
        )
        self.crm_checks_failed = Counter(
            "winback_crm_start_checks_failed", "Start-up CRM checks that found it unreachable.", registry=r
        )

        self._labelled: dict[str, Counter] = {
            "events": self.events, "suppressed": self.suppressed,
            "timer_scheduled": self.timers_scheduled, "timer_fired": self.timers_fired,
            "sla_breach": self.sla_breaches}  # the signals' names, for ``count``
        # Children of labelled counters, looked up once (``labels`` takes a lock and builds a key):
        # bounded as the counters' own children are, by the labels the code uses; made on first
        # use, so a series appears only once it counts, as before.
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, signals: Sequence[Signal]) -> None:
        """The timer metrics of one handled event."""
        for signal in signals:
            self._child(signal.name, signal.label).inc()

    def settled(self, outcome: str) -> None:
        """One message settled: handled, retried, parked or released."""
        self._child("events", outcome).inc()

    def suppressed_action(self, action: str) -> None:
        self._child("suppressed", action).inc()

    def _child(self, metric: str, label: str) -> Any:
        child = self._children.get((metric, label))
        if child is None:
            child = self._children[(metric, label)] = self._labelled[metric].labels(label)
        return child


Probe = Callable[[], tuple[bool, str]]


def _always_live() -> tuple[bool, str]:
    return True, "ok"


class Exported(Protocol):
    """Anything with a registry to export: the worker's metrics, the bridge's."""

    @property
    def registry(self) -> CollectorRegistry: ...


def serve(metrics: Exported, port: int, ready: Probe, live: Probe = _always_live) -> ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` (``live``) and ``/readyz`` (``ready``) on ``port``; each
    probe answers 200 or 503 with its reason (see ``worker.health``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(metrics.registry), "text/plain; version=0.0.4")
            elif self.path in ("/healthz", "/readyz"):
                ok, why = (live if self.path == "/healthz" else ready)()
                self._reply(200 if ok else 503, f"{why}\n".encode(), "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            return  # probes every few seconds would drown the logs

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - probes come from the kubelet
    threading.Thread(target=server.serve_forever, name="winback-metrics", daemon=True).start()
    return server
