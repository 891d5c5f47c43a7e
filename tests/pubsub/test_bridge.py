"""The bridge against the Pub/Sub test server and the real RabbitMQ: changes in, CloudEvents out."""

from __future__ import annotations

import json
from typing import Any

from handlers.errors import ConfigError
from tests.integration.broker import Names, channel
from tests.pubsub.conftest import RunningBridge, bridge_settings
from tests.pubsub.owner import owner_edits
from tests.pubsub.server import PubSubServer
from tests.sfserver import SalesforceServer
from tests.sfserver.cast import WON  # an account the test org holds
from tests.waiting import wait_until
from worker.bridge.replay import BrokerReplayStore

WAIT = 60  # generous: the machine is shared with other test suites


def _create(org: SalesforceServer, name: str, body: dict[str, Any]) -> str:
    with org.org.transaction() as tx:
        return org.org.create(tx, name, body)


def _queued(names: Names) -> list[dict[str, Any]]:
    """Everything on the work queue, left there (peeked and put back)."""
    bodies = []
    with channel() as ch:  # consumed, not basic.get: the partitions have a single active consumer
        for p in range(names.settings["partitions"]):
            queue = f"{names.settings['queue']}.p{p}"
            if not ch.queue_declare(queue, passive=True).method.message_count:
                continue
            for method, _p, body in ch.consume(queue, inactivity_timeout=0.5):
                if method is None:
                    break
                bodies.append(json.loads(body))
        # closing the channel returns every unacked message to the queue
    return bodies


def _complaint(org: SalesforceServer, n: int) -> str:
    return _create(org, "Case", {"Subject": f"Late delivery {n}", "Type": "Complaint",
                                 "Priority": "High", "Description": f"Third late delivery ({n})",
                                 "AccountId": WON})


def _wait_subscribed(pubsub: PubSubServer, count: int = 1) -> None:
    wait_until(lambda: pubsub.subscribes >= count, timeout=WAIT, what="the bridge to subscribe")


def test_complaint_case_becomes_a_complaint_event(org: SalesforceServer, pubsub: PubSubServer,
                                                  names: Names) -> None:
    with RunningBridge(bridge_settings(org, pubsub, names)) as bridge:
        _wait_subscribed(pubsub)
        case_id = _complaint(org, 1)
        _create(org, "Case", {"Subject": "How do I export?", "Type": "Question"})
        events = wait_until(lambda: _queued(names), timeout=WAIT, what="the complaint on the queue")
        wait_until(lambda: bridge.metrics.value("winback_bridge_changes_ignored_total",
                                                entity="Case") >= 1,
                   timeout=WAIT, what="the question ignored")
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "crm.complaint.logged"
    assert event["id"].startswith(f"complaint-case:{case_id}:")
    assert event["data"] | {"logged_at": None} == {
        "account_id": WON, "complaint_id": case_id, "severity": "high",
        "summary": "Third late delivery (1)", "owner_id": org.org.user_id, "logged_at": None}


def test_restart_resumes_after_the_stored_replay_id_without_doubles(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    settings = bridge_settings(org, pubsub, names)
    with RunningBridge(settings):
        _wait_subscribed(pubsub)
        _complaint(org, 1)
        wait_until(lambda: len(_queued(names)) == 1, timeout=WAIT, what="the first complaint")
    _complaint(org, 2)  # while the bridge is down
    with RunningBridge(settings):
        wait_until(lambda: len(_queued(names)) >= 2, timeout=WAIT,
                   what="the complaint made while it was down")
        _complaint(org, 3)
        ids = wait_until(lambda: (lambda q: q if len(q) >= 3 else None)(
            [e["id"] for e in _queued(names)]), timeout=WAIT, what="three complaints")
    assert len(ids) == len(set(ids)) == 3


def test_a_stored_replay_id_past_retention_restarts_from_earliest_and_says_so(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    from datetime import UTC, datetime, timedelta

    settings = bridge_settings(org, pubsub, names)
    _complaint(org, 1)
    with channel() as ch:
        ch.confirm_delivery()
        store = BrokerReplayStore(ch, settings.bridge_replay_queue, "/data/ChangeEvents")
        store.save(b"\x00" * 8, now=datetime.now(UTC) - timedelta(hours=80))
    with RunningBridge(settings) as bridge:
        wait_until(lambda: len(_queued(names)) == 1, timeout=WAIT,
                   what="the retained complaint, from EARLIEST")
    assert bridge.metrics.value("winback_bridge_replay_expired_total") == 1
    assert bridge.metrics.value("winback_bridge_possibly_missed_seconds") > 7 * 3600


def test_an_expired_session_logs_in_again(org: SalesforceServer, pubsub: PubSubServer,
                                          names: Names) -> None:
    with RunningBridge(bridge_settings(org, pubsub, names)):
        _wait_subscribed(pubsub)
        org.expire_sessions()  # the schema of the next change can only be read after a new login
        _complaint(org, 1)
        wait_until(lambda: len(_queued(names)) == 1, timeout=WAIT, what="the complaint after a new login")
    assert len(org.tokens) == 1


def _owner_records(org: SalesforceServer, event_id: str, values: dict[str, Any]) -> None:
    owner_edits(org, "Event", event_id, values)


def test_a_recorded_check_in_becomes_a_meeting_held_event(org: SalesforceServer,
                                                          pubsub: PubSubServer, names: Names) -> None:
    with RunningBridge(bridge_settings(org, pubsub, names)):
        _wait_subscribed(pubsub)
        event_id = _create(org, "Event", {
            "Subject": "Check-in 1 with Acme", "StartDateTime": "2026-12-01T10:00:00Z",
            "DurationInMinutes": 30, "WhatId": WON, "Winback_Slot__c": 1})
        _owner_records(org, event_id, {"Winback_Sentiment__c": "1",
                                       "Winback_Current_Beliefs__c": "Support is slow\nToo pricey"})
        _owner_records(org, event_id, {"Winback_Outcome__c": "continuing"})
        events = wait_until(lambda: _queued(names), timeout=WAIT, what="the meeting on the queue")
    assert [e["type"] for e in events] == ["crm.meeting.held"]
    assert events[0]["data"] == {
        "account_id": WON, "meeting_id": event_id, "kind": "check_in",
        "held_at": "2026-12-01T10:00:00.000+0000", "owner_id": org.org.user_id, "sentiment": 1,
        "current_beliefs": ["Support is slow", "Too pricey"], "outcome": "continuing"}


def test_the_bridge_comes_back_after_the_service_goes_away_losing_and_doubling_nothing(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    with RunningBridge(bridge_settings(org, pubsub, names)) as bridge:
        _wait_subscribed(pubsub)
        cases = [_complaint(org, 1)]
        wait_until(lambda: len(_queued(names)) == 1, timeout=WAIT, what="the first complaint")
        pubsub.go_away()
        cases.append(_complaint(org, 2))  # while the service is away
        wait_until(lambda: bridge.metrics.value("winback_bridge_reconnects_total",
                                                reason="unavailable") >= 1,
                   timeout=WAIT, what="the bridge to notice the service went away")
        pubsub.come_back()
        _wait_subscribed(pubsub, 2)
        cases.append(_complaint(org, 3))
        ids = wait_until(lambda: (lambda q: q if len(q) >= 3 else None)(
            [e["id"] for e in _queued(names)]), timeout=WAIT, what="three complaints")
    assert len(ids) == len(set(ids)) == 3
    assert sorted(i.split(":")[1] for i in ids) == sorted(cases)


def test_a_topic_the_user_may_not_subscribe_to_stops_the_bridge_with_the_reason(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    pubsub.forbidden.add("/data/CaseChangeEvent")
    bridge = RunningBridge(bridge_settings(org, pubsub, names,
                                           bridge_topics=("/data/ChangeEvents", "/data/CaseChangeEvent")),
                           fails=True)
    with bridge:
        wait_until(lambda: not bridge.thread.is_alive(), timeout=WAIT, what="the bridge to stop")
    assert isinstance(bridge.error, ConfigError)
    assert "may not subscribe to /data/CaseChangeEvent" in str(bridge.error)


def test_a_stored_replay_id_the_service_refuses_restarts_from_earliest_and_says_so(
        org: SalesforceServer, pubsub: PubSubServer, names: Names) -> None:
    settings = bridge_settings(org, pubsub, names)
    case_id = _complaint(org, 1)
    with channel() as ch:  # recent, but from another org or corrupted: the service refuses it
        ch.confirm_delivery()
        BrokerReplayStore(ch, settings.bridge_replay_queue, "/data/ChangeEvents").save(b"\xff" * 8)
    with RunningBridge(settings) as bridge:
        events = wait_until(lambda: _queued(names), timeout=WAIT, what="the complaint, from EARLIEST")
        _complaint(org, 2)
        wait_until(lambda: len(_queued(names)) == 2, timeout=WAIT, what="the next complaint")
    assert events[0]["id"].startswith(f"complaint-case:{case_id}:")
    assert bridge.metrics.value("winback_bridge_replay_expired_total") == 1
    assert bridge.metrics.value("winback_bridge_reconnects_total", reason="invalid_argument") == 1
