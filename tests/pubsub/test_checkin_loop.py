"""The check-in leg as processes: an owner records a check-in on its Event in the test org, the
Pub/Sub server reports the change, the bridge publishes it, and the worker writes movement on the
plan and the next check-in back to the org. Pausing the plan in the org stops the outreach."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.integration.broker import Names
from tests.pubsub.conftest import bridge_settings
from tests.pubsub.owner import owner_edits
from tests.pubsub.processes import REPO, SLOW_START, Process, environment
from tests.pubsub.server import PubSubServer
from tests.sfserver import SalesforceServer
from tests.waiting import wait_until

PLAN = "Winback_Plan__c"


def _event(n: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"test-{n}", "source": "test/checkin-loop", "type": kind,
            "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json",
            "data": data}


def _publish(events: list[dict[str, Any]], env: dict[str, str], tmp_path: Path, name: str) -> None:
    """``winback publish``, the command an admin uses, with confirms; waits for it to finish."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(events))
    with Process(["publish", str(path)], env, tmp_path / "publish.log") as publisher:
        assert publisher.popen.wait(timeout=60) == 0, (tmp_path / "publish.log").read_text()


def _plan(org: SalesforceServer, account_id: str) -> dict[str, Any] | None:
    plans = [p for p in org.records(PLAN) if p.get("Account_Id__c") == account_id]
    return plans[0] if plans else None


def _state(org: SalesforceServer, account_id: str) -> dict[str, Any]:
    plan = _plan(org, account_id)
    assert plan is not None
    state: dict[str, Any] = json.loads(plan["State_Json__c"])
    return state


def _checkin(org: SalesforceServer, account_id: str, slot: int) -> dict[str, Any] | None:
    found = [e for e in org.records("Event")
             if e.get("WhatId") == account_id and int(e.get("Winback_Slot__c") or 0) == slot]
    return found[0] if found else None


def _env(org: SalesforceServer, pubsub: PubSubServer, names: Names) -> dict[str, str]:
    settings = bridge_settings(org, pubsub, names, rules=REPO / "config" / "rules.yaml")
    return environment(settings, WINBACK_CRM="salesforce")


def _plan_with_first_checkin(org: SalesforceServer, env: dict[str, str], tmp_path: Path) -> tuple[
        str, dict[str, Any]]:
    """An account lapses and its exit interview is held (sentiment -1): the worker writes the plan
    and check-in 1 as an Event in the org, with what the owner should record on it."""
    owner = org.org.user_id
    account_id = org.org.seed("Account", Name="Fabrikam", OwnerId=owner)
    _publish([_event("lapsed", "crm.customer.lapsed", {
        "account_id": account_id, "account_name": "Fabrikam", "lapsed_at": "2026-11-20",
        "owner_id": owner, "reason": "Support tickets went unanswered"})], env, tmp_path, "lapsed")
    wait_until(lambda: _plan(org, account_id), timeout=120, what="the plan in the org")
    _publish([_event("exit", "crm.meeting.held", {
        "account_id": account_id, "meeting_id": "exit-interview-1", "kind": "exit_interview",
        "held_at": datetime.now(UTC).isoformat(), "owner_id": owner, "sentiment": -1,
        "current_beliefs": ["Support is slow"]})], env, tmp_path, "exit")
    first = wait_until(lambda: _checkin(org, account_id, 1), timeout=120, what="check-in 1 in the org")
    return account_id, first


def _owner_records_the_checkin(org: SalesforceServer, event_id: str) -> None:
    """Text fields first, the outcome last: setting the outcome is what sends it to the worker."""
    owner_edits(org, "Event", event_id, {
        "Winback_Sentiment__c": "1",
        "Winback_Current_Beliefs__c": "Support answers within a day now",
        "Winback_Target_Beliefs__c": "Fabrikam's tickets come first",
        "Winback_New_Experiences__c": "A named support engineer",
        "Winback_Feedback__c": "The new portal is easier"})
    owner_edits(org, "Event", event_id, {"Winback_Outcome__c": "continuing"})


def test_a_completed_check_in_ends_as_movement_on_the_plan_and_the_next_check_in(
        org: SalesforceServer, pubsub: PubSubServer, names: Names, tmp_path: Path) -> None:
    env = _env(org, pubsub, names)
    with Process(["bridge"], env, tmp_path / "bridge.log"), \
            Process(["run"], env, tmp_path / "worker.log"):
        wait_until(lambda: pubsub.subscribes, timeout=SLOW_START, what="the bridge to subscribe")
        account_id, first = _plan_with_first_checkin(org, env, tmp_path)
        assert "Win-back Outcome" in first["Description"]  # the owner is told what to fill in
        _owner_records_the_checkin(org, first["Id"])
        second = wait_until(lambda: _checkin(org, account_id, 2), timeout=120,
                            what="check-in 2 in the org")
    state = _state(org, account_id)
    (checkin,) = [m for m in state["meetings"] if m["meeting_id"] == first["Id"]]
    assert (checkin["kind"], checkin["sentiment"], checkin["movement"]) == ("check_in", 1, 2)
    assert state["checkins_without_movement"] == 0
    assert "Support answers within a day now" in state["current_beliefs"]
    assert "A named support engineer" in state["new_experiences"]
    assert _plan(org, account_id)["Last_Movement__c"] == 2  # type: ignore[index]
    assert org.org.get("Event", first["Id"])["Winback_Status__c"] == "done"
    assert second["Winback_Status__c"] == "pending"
    assert second["StartDateTime"] > first["StartDateTime"]


def test_a_plan_the_owner_paused_in_the_org_writes_no_outreach_and_says_so(
        org: SalesforceServer, pubsub: PubSubServer, names: Names, tmp_path: Path) -> None:
    env = _env(org, pubsub, names)
    with Process(["bridge"], env, tmp_path / "bridge.log"), \
            Process(["run"], env, tmp_path / "worker.log"):
        wait_until(lambda: pubsub.subscribes, timeout=SLOW_START, what="the bridge to subscribe")
        account_id, first = _plan_with_first_checkin(org, env, tmp_path)
        plan = _plan(org, account_id)
        assert plan is not None
        owner_edits(org, PLAN, plan["Id"], {"Paused__c": True})
        _owner_records_the_checkin(org, first["Id"])
        wait_until(lambda: [m for m in _state(org, account_id)["meetings"]
                            if m["meeting_id"] == first["Id"]], timeout=120,
                   what="the check-in recorded on the paused plan")
    state = _state(org, account_id)
    assert _checkin(org, account_id, 2) is None  # no next check-in while paused
    (suppressed,) = [s for s in state["suppressed"] if s["action"] == "check_in"]
    assert "paused" in suppressed["reason"]
    assert _plan(org, account_id)["Suppressions__c"] >= 1  # type: ignore[index]
    logged = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
              if line.startswith("{") and "action_suppressed" in line]
    assert any("paused" in entry["reason"] for entry in logged)

