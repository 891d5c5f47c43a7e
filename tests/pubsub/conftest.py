"""A test org, its Pub/Sub server, unique broker names, and a bridge wired to all three."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.broker import Names, channel, delete_all, require_broker
from tests.pubsub.server import PubSubServer
from tests.sfserver import SalesforceServer, jwt_settings
from tests.sfserver.server import ORG_ID
from worker.bridge.settings import BridgeSettings
from worker.topology import Topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[SalesforceServer]:
    with SalesforceServer(tmp_path) as running:  # strict: the tests name the org's own records
        yield running


@pytest.fixture
def pubsub(org: SalesforceServer, tmp_path: Path) -> Iterator[PubSubServer]:
    with PubSubServer(org, tmp_path) as running:
        yield running


@pytest.fixture
def names() -> Iterator[Names]:
    require_broker()
    names = Names(f"test.bridge.{uuid.uuid4().hex[:8]}")
    yield names
    delete_all(names, (0.2,))
    with channel() as ch:
        ch.queue_delete(f"{names.prefix}.replay.data.ChangeEvents")


def bridge_settings(org: SalesforceServer, pubsub: PubSubServer, names: Names,
                    **overrides: Any) -> BridgeSettings:
    base = jwt_settings(org).model_dump()
    values = base | names.settings | {
        "retry_delays": (0.2,), "pubsub_address": pubsub.address, "pubsub_ca_bundle": pubsub.ca_file,
        "salesforce_org_id": ORG_ID, "bridge_sources": REPO / "config" / "sources.yaml",
        "bridge_replay_queue": f"{names.prefix}.replay", "bridge_max_backoff": 0.5,
        "log_format": "json",
    }
    settings = BridgeSettings(**(values | overrides))
    with channel() as ch:
        Topology.from_settings(settings).declare(ch)
    return settings


class RunningBridge:
    """``run_bridges`` in a thread, stopped and joined on exit; what it raised is raised there
    (unless the test says it ``fails`` and looks at ``error`` itself)."""

    def __init__(self, settings: BridgeSettings, fails: bool = False) -> None:
        from worker.bridge.metrics import BridgeMetrics

        self.metrics = BridgeMetrics()
        self.stop = threading.Event()
        self.settings = settings
        self.thread = threading.Thread(target=self._run, name="test-bridge")
        self.error: BaseException | None = None
        self.fails = fails

    def _run(self) -> None:
        from worker.bridge.app import run_bridges

        try:
            run_bridges(self.settings, self.stop, self.metrics)
        except BaseException as exc:  # handed to the test in __exit__
            self.error = exc

    def __enter__(self) -> RunningBridge:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "bridge did not stop"
        if self.error is not None and not self.fails:
            raise self.error
