"""Two ``winback run`` processes on one broker and one test org: every account's events are
applied in publish order, while the first replica hands partitions over to the second, and when it
stops and the second takes the rest over."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

from handlers.actions import REVISION_MARKER_TYPE
from tests.integration.broker import Names, publish_many
from tests.pubsub.processes import Process, environment
from tests.sfserver import SalesforceServer, jwt_settings
from tests.sfserver.cast import ALICE
from tests.waiting import wait_until
from worker.settings import Settings

ROOT = Path(__file__).parents[2]
ACCOUNTS = 50
STEPS = ("lapse", "complaint", "complaint", "exit_interview", "check_in")


def _account(n: int) -> str:
    return f"001{n:012d}AAA"  # the test org's numbered accounts (tests/sfserver/cast.py)


def _event(n: int, step: int) -> dict[str, Any]:
    account, at = _account(n), f"2026-11-{10 + step:02d}T09:00:00Z"
    kind = STEPS[step]
    envelope = {"specversion": "1.0", "id": f"r{n:02d}-{step}", "source": "crm/replicas",
                "time": at, "datacontenttype": "application/json"}
    if kind == "lapse":
        return envelope | {"type": "crm.customer.lapsed", "data": {
            "account_id": account, "account_name": f"Customer {n}", "lapsed_at": "2026-11-09",
            "owner_id": ALICE, "annual_value": 50000}}
    if kind == "complaint":
        return envelope | {"type": "crm.complaint.logged", "data": {
            "account_id": account, "complaint_id": f"CMP-{n}-{step}", "logged_at": at,
            "severity": "high", "owner_id": ALICE, "summary": f"Complaint {step} of customer {n}"}}
    return envelope | {"type": "crm.meeting.held", "data": {
        "account_id": account, "meeting_id": f"MTG-{n}-{step}", "held_at": at, "kind": kind,
        "owner_id": ALICE, "sentiment": -1}}


def _applied(org: SalesforceServer) -> list[str]:
    """The published events' ids in the order the test org committed their ledger rows (the
    timers the rules set are left out)."""
    return [str(r["Event_Id__c"]) for r in org.records("Winback_Ledger__c")
            if r.get("Event_Type__c") != REVISION_MARKER_TYPE
            and str(r["Event_Id__c"]).startswith("r")]


def _consuming(log: Path) -> bool:
    return log.exists() and re.search(r'"event":\s*"consuming"', log.read_text()) is not None


def test_two_replicas_apply_each_accounts_events_in_publish_order(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as org:
        settings = Settings(**(jwt_settings(org).model_dump() | names.settings | {
            "rules": ROOT / "config" / "rules.yaml", "retry_delays": (0.2, 0.5, 1.0),
            "batch_size": 10, "prefetch": 40, "partitions": 4, "log_format": "json",
            "rebalance_seconds": 0.3}))
        env = environment(settings)
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        with Process(["run"], env, first_log) as first:
            wait_until(lambda: _consuming(first_log), timeout=60, what="the first replica to consume")
            with Process(["run"], env, second_log):
                wait_until(lambda: _consuming(second_log), timeout=60, what="the second replica")
                # In quick succession, accounts interleaved: a lapse and two complaints...
                publish_many(names, [_event(n, step) for step in range(3) for n in range(ACCOUNTS)])
                # ...while the first replica, active on every partition, hands some over...
                wait_until(lambda: '"partition_handed_over"' in first_log.read_text(), timeout=60,
                           what="the first replica to hand a partition over")
                # ...then two meetings, some handled by the second replica.
                publish_many(names, [_event(n, step) for step in range(3, 5) for n in range(ACCOUNTS)])
                wait_until(lambda: '"event_handled"' in second_log.read_text(), timeout=60,
                           what="the second replica to handle events")
                first.popen.send_signal(signal.SIGTERM)  # the other replica takes over its share
                assert first.popen.wait(timeout=60) == 0, first_log.read_text()[-3000:]
                wait_until(lambda: len(set(_applied(org))) == ACCOUNTS * len(STEPS), timeout=120,
                           what="every event applied")
        applied = _applied(org)
        tasks = org.records("Task")
    out_of_order = []
    for n in range(ACCOUNTS):
        steps = [int(e.split("-")[1]) for e in applied if e.startswith(f"r{n:02d}-")]
        if steps != sorted(steps):
            out_of_order.append((n, steps))
    assert out_of_order == [], f"{len(out_of_order)} accounts applied out of order: {out_of_order[:5]}"
    without_discovery = [n for n in range(ACCOUNTS) if not any(
        t.get("WhatId") == _account(n) and str(t.get("Subject", "")).startswith("Find out why")
        for t in tasks)]
    assert without_discovery == [], f"{len(without_discovery)} accounts got no discovery task"
