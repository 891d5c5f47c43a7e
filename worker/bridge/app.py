"""Build the bridge from settings: Salesforce session, Pub/Sub channel, sources, publisher; run it."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from handlers.errors import ConfigError
from handlers.sources.loader import parse_sources
from handlers.sources.model import Source
from worker.bridge.bridge import Bridge, BridgeConfig
from worker.bridge.health import BridgeHealth, Topic
from worker.bridge.metrics import BridgeMetrics
from worker.bridge.publisher import BridgePublisher
from worker.bridge.session import open_channel
from worker.bridge.settings import BridgeSettings
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_auth import Token
from worker.crm.salesforce_client import SalesforceClient
from worker.metrics import serve


def load_sources(path: Path) -> tuple[Source, ...]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"WINBACK_BRIDGE_SOURCES: {exc}") from exc
    return parse_sources(text, str(path))


class _Session:
    """The Salesforce token for gRPC headers and the REST client for record reads, one login."""

    def __init__(self, client: SalesforceClient) -> None:
        self._client = client
        self._token: Token | None = None

    def token(self, renew: bool) -> Token:
        if self._token is None or renew:
            self._token = self._client.fetch_token()
        return self._token

    def fetch(self, entity: str, record_id: str, fields: Sequence[str]) -> Mapping[str, Any]:
        direct = ",".join(f for f in fields if "." not in f)  # sObject reads take no parent fields
        path = f"sobjects/{entity}/{record_id}" + (f"?fields={direct}" if direct else "")
        record: Mapping[str, Any] = self._client.rest("GET", path, what=f"read {entity} {record_id}")
        return record


def build_bridges(settings: BridgeSettings, stop: threading.Event,
                  metrics: BridgeMetrics) -> list[tuple[Bridge, BridgePublisher]]:
    if not settings.salesforce_org_id:
        raise ConfigError("WINBACK_SALESFORCE_ORG_ID: the bridge needs the org id (00D...)")
    sources = load_sources(settings.bridge_sources)
    session = _Session(SalesforceCrm.from_settings(settings.model_copy(update={"crm": "salesforce"})).client)
    channel = open_channel(settings.pubsub_address, settings.pubsub_ca_bundle, settings.bridge_max_backoff)
    # A turn at least every quarter heartbeat: the broker hears from an idle bridge in time.
    tick = min(5.0, settings.heartbeat / 4)
    built = []
    for topic in settings.bridge_topics:
        config = BridgeConfig(topic, settings.salesforce_org_id, settings.bridge_batch,
                              timedelta(hours=settings.bridge_retention_hours),
                              settings.bridge_max_backoff, tick)
        publisher = BridgePublisher(settings, topic)
        built.append((Bridge(config, channel, session.token, sources, session.fetch, publisher,
                             metrics, stop), publisher))
    return built


class _Probes:
    """What the probes answer: "starting" until the bridges are built, then their health."""

    def __init__(self) -> None:
        self.health: BridgeHealth | None = None

    def live(self) -> tuple[bool, str]:
        return (True, "starting") if self.health is None else self.health.live()

    def ready(self) -> tuple[bool, str]:
        if self.health is None:
            return False, "starting: reading the sources, connecting to the broker"
        return self.health.ready()


def run_bridges(settings: BridgeSettings, stop: threading.Event, metrics: BridgeMetrics) -> None:
    """One thread per topic, and the probes and metrics on ``WINBACK_METRICS_PORT`` when set.
    Returns when ``stop`` is set and every subscription has ended; raises the error that ended a
    topic's bridge (which stops them all)."""
    probes = _Probes()
    server = (serve(metrics, settings.metrics_port, ready=probes.ready, live=probes.live)
              if settings.metrics_port else None)
    bridges: list[tuple[Bridge, BridgePublisher]] = []
    try:
        bridges = build_bridges(settings, stop, metrics)
        probes.health = BridgeHealth(tuple(Topic(b.progress, p.connected) for b, p in bridges),
                                     settings.stall_limit)
        _run(bridges, stop)
        structlog.get_logger("winback.bridge").info("bridge_stopped")
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for _, publisher in bridges:
            publisher.close()
    for bridge, _ in bridges:
        if bridge.error is not None:
            raise bridge.error


def _run(bridges: Sequence[tuple[Bridge, BridgePublisher]], stop: threading.Event) -> None:
    threads = [threading.Thread(target=b.run, name=f"bridge-{b.config.topic}") for b, _ in bridges]
    for thread in threads:
        thread.start()
    structlog.get_logger("winback.bridge").info("bridge_started",
                                                topics=[b.config.topic for b, _ in bridges])
    stop.wait()
    for bridge, _ in bridges:
        bridge.stop()
    for thread in threads:
        thread.join()
