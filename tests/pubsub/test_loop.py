"""The whole loop as processes: test org -> Pub/Sub server -> bridge -> RabbitMQ -> worker -> test org."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.broker import Names, channel
from tests.pubsub.conftest import bridge_settings
from tests.pubsub.processes import REPO, SLOW_START, Process, environment
from tests.pubsub.server import PubSubServer
from tests.pubsub.test_bridge import _queued
from tests.salesforce.changes import account_id  # accounts the test org holds
from tests.sfserver import SalesforceServer
from tests.waiting import wait_until
from worker.bridge.replay import BrokerReplayStore, Position
from worker.bridge.settings import BridgeSettings


def _case(org: SalesforceServer, n: int) -> str:
    with org.org.transaction() as tx:
        return org.org.create(tx, "Case", {
            "Subject": f"Late delivery {n}", "Type": "Complaint", "Priority": "Medium",
            "Description": f"The third late delivery this month ({n})",
            "AccountId": account_id(n)})


def _by_event(org: SalesforceServer, name: str, field: str) -> Counter[str]:
    return Counter(str(r.get(field)) for r in org.records(name)
                   if str(r.get(field) or "").startswith("complaint-case:"))


def _settings(org: SalesforceServer, pubsub: PubSubServer, names: Names) -> BridgeSettings:
    return bridge_settings(org, pubsub, names, rules=REPO / "config" / "rules.yaml",
                           retry_delays=(0.2,))


def _env(settings: BridgeSettings) -> dict[str, str]:
    return environment(settings, WINBACK_CRM="salesforce")


def _stored(settings: BridgeSettings) -> Position | None:
    """The replay id a stopped bridge left in the broker (read only while no bridge runs)."""
    with channel() as ch:
        return BrokerReplayStore(ch, settings.bridge_replay_queue, "/data/ChangeEvents").load()


def _replays(log: Path) -> list[str]:
    """How each start of the bridge subscribed (LATEST, EARLIEST or CUSTOM), in order."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line["replay"] for line in lines if line.get("event") == "subscription_started"]


def test_a_complaint_case_ends_as_an_acknowledgement_task(
        org: SalesforceServer, pubsub: PubSubServer, names: Names, tmp_path: Path) -> None:
    env = _env(_settings(org, pubsub, names))
    with Process(["bridge"], env, tmp_path / "bridge.log"), \
            Process(["run"], env, tmp_path / "worker.log"):
        wait_until(lambda: pubsub.subscribes, timeout=SLOW_START, what="the bridge to subscribe")
        case_id = _case(org, 1)

        def acknowledgement() -> Any:
            return [t for t in org.records("Task") if t.get("Winback_Kind__c") == "acknowledgement"]

        tasks = wait_until(acknowledgement, timeout=120, what="the acknowledgement task")
    assert tasks[0]["WhatId"] == account_id(1)
    assert tasks[0]["Winback_Event_Id__c"].startswith(f"complaint-case:{case_id}:")


def test_sigkill_mid_stream_loses_nothing_and_the_worker_writes_each_effect_once(
        org: SalesforceServer, pubsub: PubSubServer, names: Names, tmp_path: Path) -> None:
    settings = _settings(org, pubsub, names)
    env = _env(settings)
    total = 30
    with Process(["run"], env, tmp_path / "worker.log"):
        bridge = Process(["bridge"], env, tmp_path / "bridge.log")
        wait_until(lambda: pubsub.subscribes, timeout=SLOW_START, what="the bridge to subscribe")
        for n in range(total // 2):
            _case(org, n)
        wait_until(lambda: _by_event(org, "Winback_Ledger__c", "Event_Id__c"), timeout=120,
                   what="the first complaints handled")
        bridge.kill()  # mid-stream: some changes published, perhaps not yet their replay id
        stored = _stored(settings)
        for n in range(total // 2, total):
            _case(org, n)
        with Process(["bridge"], env, tmp_path / "bridge-again.log"):
            ledger = wait_until(
                lambda: (lambda c: c if len(c) == total else None)(
                    _by_event(org, "Winback_Ledger__c", "Event_Id__c")),
                timeout=300, what=f"all {total} complaints in the ledger")
            wait_until(lambda: not _queued(names), timeout=120, what="the queue drained")
    tasks = _by_event(org, "Task", "Winback_Event_Id__c")
    # Resumed where the broker says, never from LATEST: from the stored replay id, or from
    # EARLIEST when the kill came before the first one was stored.
    assert stored is not None
    assert _replays(tmp_path / "bridge.log")[0] == "LATEST"
    assert _replays(tmp_path / "bridge-again.log")[0] == ("CUSTOM" if stored.replay_id else "EARLIEST")
    assert set(ledger.values()) == {1}
    assert len(tasks) == total
    assert len(set(tasks.values())) == 1  # the same tasks for each complaint, once
    print(f"sigkill: {total} changes, {len(ledger)} events in the ledger, "
          f"{sum(tasks.values())} tasks ({sum(tasks.values()) // total} per complaint)")
