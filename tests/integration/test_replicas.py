"""Two ``winback run`` processes on one broker and one test org: every account's events are
applied in publish order, also while one replica stops and the other takes its partitions over."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pika

from handlers.actions import REVISION_MARKER_TYPE
from tests.integration.broker import Names, channel
from tests.pubsub.processes import Process, environment
from tests.sfserver import SalesforceServer, jwt_settings
from tests.sfserver.cast import ALICE
from tests.waiting import wait_until
from worker.settings import Settings
from worker.topology import account_headers

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


def _publish_burst(names: Names, events: list[dict[str, Any]]) -> None:
    """In quick succession on one channel, as a CRM sends a burst (accounts interleaved)."""
    with channel() as ch:
        ch.confirm_delivery()
        for event in events:
            ch.basic_publish(names.settings["exchange"], event["type"], json.dumps(event).encode(),
                             pika.BasicProperties(delivery_mode=2, headers=account_headers(event)),
                             mandatory=True)


def _consuming(log: Path) -> bool:
    return log.exists() and '"event": "consuming"' in log.read_text()


def test_two_replicas_apply_each_accounts_events_in_publish_order(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as org:
        settings = Settings(**(jwt_settings(org).model_dump() | names.settings | {
            "rules": ROOT / "config" / "rules.yaml", "retry_delays": (0.2, 0.5, 1.0),
            "batch_size": 10, "prefetch": 40, "partitions": 4, "log_format": "json"}))
        env = environment(settings)
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        with Process(["run"], env, first_log) as first:
            wait_until(lambda: _consuming(first_log), timeout=60, what="the first replica to consume")
            with Process(["run"], env, second_log):
                wait_until(lambda: _consuming(second_log), timeout=60, what="the second replica")
                _publish_burst(names, [_event(n, step) for step in range(len(STEPS))
                                       for n in range(ACCOUNTS)])
                wait_until(lambda: len(_applied(org)) >= 30, timeout=60, what="some events applied")
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
