"""What the bridge's /healthz and /readyz answer, from each topic's progress, as a table."""

from __future__ import annotations

import time
from typing import Any

import pytest

from worker.bridge.health import BridgeHealth, Progress, Topic

LIMIT = 60.0


def _topic(name: str, subscribed: bool = True, broker: bool = True, ago: float = 0.0,
           failed: str | None = None, lost: str | None = None) -> Topic:
    progress = Progress(name)
    progress.subscribed(subscribed)
    progress.turned(time.monotonic() - ago)
    if lost is not None:
        progress.lost(lost)
    if failed is not None:
        progress.failed(failed)
    return Topic(progress, lambda: broker)


def _health(specs: list[dict[str, Any]]) -> BridgeHealth:
    return BridgeHealth([_topic(**spec) for spec in specs], LIMIT)


# topics, live, why
@pytest.mark.parametrize(("topics", "live", "why"), [
    ([{"name": "/data/ChangeEvents"}], True, "ok"),
    ([{"name": "/data/ChangeEvents", "subscribed": False, "broker": False}], True, "ok"),  # reconnecting
    ([{"name": "/data/CaseChangeEvent"}, {"name": "/data/EventChangeEvent", "ago": LIMIT + 5}], False,
     "/data/EventChangeEvent: stalled, no turn for 65 s"),
    ([{"name": "/data/ChangeEvents", "failed": "the integration user may not subscribe"}], False,
     "/data/ChangeEvents: the bridge ended: the integration user may not subscribe"),
])
def test_liveness(topics: list[dict[str, Any]], live: bool, why: str) -> None:
    answer = _health(topics).live()
    assert answer[0] is live
    assert answer[1].startswith(why)


@pytest.mark.parametrize(("topics", "ready", "why"), [
    ([{"name": "/data/ChangeEvents"}], True, "ready"),
    ([{"name": "/data/ChangeEvents", "subscribed": False}], False,
     "/data/ChangeEvents: not subscribed (connecting to the Pub/Sub API)"),
    ([{"name": "/data/ChangeEvents", "subscribed": False, "lost": "unavailable: failed to connect"}],
     False, "/data/ChangeEvents: not subscribed (waiting to reconnect; last attempt: unavailable: "
     "failed to connect)"),
    ([{"name": "/data/CaseChangeEvent"}, {"name": "/data/EventChangeEvent", "broker": False}], False,
     "/data/EventChangeEvent: no broker connection (reconnecting)"),
    ([{"name": "/data/ChangeEvents", "failed": "WINBACK_BRIDGE_SOURCES: no such file"}], False,
     "/data/ChangeEvents: not subscribed (WINBACK_BRIDGE_SOURCES: no such file)"),
])
def test_readiness(topics: list[dict[str, Any]], ready: bool, why: str) -> None:
    assert _health(topics).ready() == (ready, why)
