"""The composition root: builds the worker's parts once from the settings and runs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import structlog

from handlers.registry import handle
from worker.consumer import Consumer
from worker.crm.factory import build_crm
from worker.crm.port import Crm
from worker.dispatch import Processor
from worker.metrics import Metrics, serve
from worker.policy import RetryPolicy
from worker.rules_source import RulesHolder, RulesWatcher, load_snapshot
from worker.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    crm: Crm
    consumer: Consumer
    watcher: RulesWatcher
    metrics: Metrics
    server: ThreadingHTTPServer | None = None

    def run(self, exit_when_idle: float | None = None) -> None:
        log = structlog.get_logger("winback")
        self.watcher.start()
        try:
            self.consumer.run(exit_when_idle)
        finally:
            self.watcher.stop()
            self.crm.close()
            if self.server is not None:
                self.server.shutdown()
                self.server.server_close()
            log.info("worker_stopped")


def build_app(settings: Settings, metrics: Metrics | None = None) -> App:
    """Everything is checked here, before the first message: rules, CRM, settings."""
    metrics = metrics or Metrics()
    log = structlog.get_logger("winback")
    rules, loaded = load_snapshot(settings.rules)  # RulesInvalidError with file:line messages
    holder = RulesHolder(rules)
    metrics.rules_info.info({"version": rules.version, "source": str(settings.rules)})
    crm = build_crm(settings)
    crm.check()
    processor = Processor(crm, holder.current, handle, utcnow, RetryPolicy(settings.retry_delays))
    consumer = Consumer(settings, processor, metrics)
    watcher = RulesWatcher(settings.rules, holder, settings.rules_poll_seconds, loaded=loaded,
                           metrics=metrics)
    server = None
    if settings.metrics_port:
        server = serve(metrics, settings.metrics_port, healthy=consumer.is_consuming)
    log.info("worker_ready", crm=crm.name, rules_version=rules.version, queue=settings.queue)
    return App(settings, crm, consumer, watcher, metrics, server)
