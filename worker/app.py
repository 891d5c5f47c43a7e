"""The composition root: builds the worker's parts once from the settings and runs them."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import structlog

from handlers.errors import TransientError
from handlers.registry import handle
from worker.crm.factory import build_crm
from worker.crm.port import Crm, MetersApiCalls
from worker.dispatch import Processor
from worker.health import Health
from worker.holds import RetryHolds
from worker.metrics import Metrics, serve
from worker.pause import CrmAccessPause
from worker.policy import RetryPolicy
from worker.processing import Batching, ProcessingLanes
from worker.queue_depths import QueueDepths
from worker.report.sampler import FigureSampler
from worker.rules_source import RulesHolder, RulesWatcher, load_snapshot
from worker.session import AmqpSession
from worker.settings import Settings
from worker.stop import StopToken
from worker.topology import Topology

CRM_WAIT_FIRST = 1.0  # seconds before asking an unreachable CRM again; doubles up to the max
CRM_WAIT_MAX = 60.0
# Container objects allocated (net of those freed) before a young collection; Python's is 700.
YOUNG_COLLECTION_AFTER = 50_000


def tune_collector() -> None:
    """For a worker process, once it is built: freeze what start-up made (modules, rules,
    templates, models: it lives as long as the process) out of the collector's passes, and size
    the young generation for what the lanes keep alive while their batches run (up to the prefetch
    of events, thousands of objects each) instead of 700 objects. With Python's defaults the
    collector traversed those live objects again and again, finding nothing: about a tenth of the
    worker's CPU per event. Garbage in cycles still goes, a collection per 50,000 objects kept.
    Not for a process that hosts the worker among other things (a test run): its own objects
    would be frozen with the worker's."""
    gc.collect()
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, older, oldest)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    crm: Crm
    consumer: AmqpSession
    stop: StopToken
    watcher: RulesWatcher
    metrics: Metrics
    server: ThreadingHTTPServer | None = None
    depths: QueueDepths | None = None
    figures: FigureSampler | None = None

    def run(self, exit_when_idle: float | None = None) -> None:
        log = structlog.get_logger("winback")
        try:
            if not self._wait_for_crm(log):
                return  # stopped while waiting
            # The owners the rules name, looked up once; a reload looks them up again.
            self.watcher.holder.swap(self.crm.resolve_owners(self.watcher.holder.current()))
            log.info("worker_ready", crm=self.crm.name,
                     rules_version=self.watcher.holder.current().version, queue=self.settings.queue)
            self.watcher.start()
            if self.depths is not None:
                self.depths.start()
            if self.figures is not None:
                self.figures.start()
            self.consumer.run(exit_when_idle)
        finally:
            if self.depths is not None:
                self.depths.stop()
            if self.figures is not None:
                self.figures.stop()
            self.watcher.stop()
            self.crm.close()
            if self.server is not None:
                self.server.shutdown()
                self.server.server_close()
            log.info("worker_stopped")

    def _wait_for_crm(self, log: Any) -> bool:
        """Check the CRM until it answers: False if a stop came first.

        A CRM that refuses us (credentials, metadata) raises ConfigError and the worker exits 2
        with the reason. One that is only down or rate-limited is waited for, with backoff, and
        the pod stays alive and not ready instead of crash-looping through the outage.
        """
        delay = CRM_WAIT_FIRST
        while True:
            try:
                self.crm.check()
            except TransientError as exc:
                self.metrics.crm_checks_failed.inc()
                log.warning("crm_unavailable_at_start", crm=self.crm.name, error=str(exc), retry_in=delay)
                if self.stop.pause(delay):
                    return False
                delay = min(delay * 2, CRM_WAIT_MAX)
            else:
                return True


def build_app(settings: Settings, metrics: Metrics | None = None, crm: Crm | None = None) -> App:
    """Build every part from the settings: rules are checked here; the CRM when ``run`` starts."""
    metrics = metrics or Metrics()
    rules, loaded = load_snapshot(settings.rules)  # RulesInvalidError with file:line messages
    holder = RulesHolder(rules)
    metrics.rules_info.info({"version": rules.version, "source": str(settings.rules)})
    crm = crm or build_crm(settings)
    holds = RetryHolds()
    metrics.held_accounts.set_function(lambda: float(len(holds)))
    processor = Processor(crm, holder.current, handle, utcnow, RetryPolicy(settings.retry_delays),
                          holds)
    stop = StopToken()
    pause = CrmAccessPause(crm, metrics, stop)
    consumer = consume(settings, processor, metrics, stop, pause)
    watcher = RulesWatcher(settings.rules, holder, settings.rules_poll_seconds, loaded=loaded,
                           metrics=metrics, resolve=crm.resolve_owners)
    meter_api_calls(crm, metrics)
    server = depths = figures = None
    if settings.metrics_port:
        health = Health(consumer, settings.stall_limit)
        server = serve(metrics, settings.metrics_port, ready=health.ready, live=health.live)
        depths = QueueDepths(settings, metrics)
    if settings.figures_seconds:  # also without a metrics port: it writes plan report fields
        figures = FigureSampler(lambda: build_crm(settings), metrics, settings.figures_seconds)
    return App(settings, crm, consumer, stop, watcher, metrics, server, depths, figures)


def consume(settings: Settings, processor: Processor, metrics: Metrics, stop: StopToken,
            pause: CrmAccessPause | None = None) -> AmqpSession:
    """The consumer in its two halves: the AMQP session and the processing lanes it feeds; a
    CRM that refuses the worker pauses it through ``pause``."""
    batching = Batching(settings.batch_size, settings.batch_wait_ms / 1000, settings.crm_concurrency)
    processing = ProcessingLanes(processor, batching, metrics, stop)
    return AmqpSession(settings, Topology.from_settings(settings), processing, metrics, stop,
                       on_pause=pause.refused if pause else None)


def meter_api_calls(crm: Crm, metrics: Metrics) -> None:
    """Export the CRM's remaining API calls, read at each scrape, when the CRM rations them."""
    if not isinstance(crm, MetersApiCalls):
        return
    metered = crm
    metrics.crm_api_floor.set(metered.api_allowance()[1])
    metrics.crm_api_remaining.set_function(
        lambda: float(-1 if (left := metered.api_allowance()[0]) is None else left))
