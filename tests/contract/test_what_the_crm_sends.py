"""What real CRMs send, through the real handlers and default rules, into every adapter.

Masked sandbox addresses, very long complaints and very long rendered subjects are each
acknowledged, fitted to their fields with a marker, never parked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from handlers.actions import EventChange
from handlers.events import parse_event
from handlers.plan import Plan
from handlers.registry import handle
from tests.sfserver.cast import CONTACT, OWNER, WON
from tests.unit.rulesets import CONFIG
from worker.crm.fitting import MARKER
from worker.crm.port import Crm, Record
from worker.rules_source import load_rules

RULES = load_rules(CONFIG / "rules.yaml")
NOW = datetime(2026, 11, 3, 10, 1, tzinfo=UTC)


def _send(crm: Crm, event_type: str, event_id: str, data: dict[str, Any]) -> list[Record]:
    """One event as the CRM would send it: parsed, handled on the stored plan, written."""
    body = json.dumps({"specversion": "1.0", "id": event_id, "source": "crm/test", "type": event_type,
                       "time": "2026-11-03T10:00:00Z", "data": {"account_id": WON, **data}})
    event = parse_event(body)
    plan: Plan | None = crm.load([WON], [event_id]).plans.get(WON)
    outcome = handle(event, plan, RULES, NOW)
    assert crm.apply([EventChange(event.id, event.type, WON, outcome.actions)]) == [None]
    return crm.records(WON)


def _complaint(crm: Crm, event_id: str = "evt-c1", **data: Any) -> list[Record]:
    base = {"complaint_id": f"CMP-{event_id}", "logged_at": "2026-11-03T10:00:00Z",
            "severity": "high", "owner_id": OWNER, "contact_id": CONTACT,
            "summary": "We waited three weeks for a reply."}
    return _send(crm, "crm.complaint.logged", event_id, base | data)


def _acknowledgement(records: list[Record]) -> Record:
    (found,) = [r for r in records if r.kind == "task" and r.fields["kind"] == "acknowledgement"]
    return found


def test_a_masked_sandbox_email_is_kept_noted_on_the_plan_and_the_complaint_acknowledged(
        crm: Crm) -> None:
    records = _complaint(crm, contact_email="dana@northwind.example.com.invalid")
    assert _acknowledgement(records).fields["owner_id"] == OWNER
    (plan,) = [r for r in records if r.kind == "plan"]
    assert plan.fields["contact_email"] == "dana@northwind.example.com.invalid"
    assert any("contact_email 'dana@northwind.example.com.invalid' kept as text" in c["what"]
               for c in plan.fields["history"])


def test_a_100000_character_summary_is_acknowledged_cut_to_the_field_with_the_marker(
        crm: Crm) -> None:
    summary = "The outage cost us a week. " * 4000  # 108,000 characters
    description = _acknowledgement(_complaint(crm, summary=summary)).fields["description"]
    assert len(description) == 32_000
    assert description.endswith(MARKER)
    assert "The outage cost us a week." in description


def test_a_rendered_subject_longer_than_the_field_is_cut_with_the_marker(crm: Crm) -> None:
    name = "Northwind Traders " + "International " * 28  # about 400 characters
    subject = _acknowledgement(_complaint(crm, account_name=name)).fields["subject"]
    assert len(subject) == 255
    assert subject.startswith("Acknowledge the complaint from Northwind Traders International")
    assert subject.endswith(MARKER)


def test_a_400_character_experience_becomes_a_task_with_a_fitted_subject(crm: Crm) -> None:
    _send(crm, "crm.customer.lapsed", "evt-l1", {"account_name": "Northwind", "owner_id": OWNER,
                                                   "lapsed_at": "2026-11-01", "annual_value": 48000})
    experience = "A named support engineer who " + "answers within the hour, " * 15
    records = _send(crm, "crm.meeting.held", "evt-m1", {
        "meeting_id": "MTG-1", "held_at": "2026-11-03T09:00:00Z", "kind": "exit_interview",
        "owner_id": OWNER, "new_experiences": [experience]})
    (task,) = [r for r in records if r.kind == "task" and r.fields["kind"] == "experience"]
    assert len(task.fields["subject"]) == 255
    assert task.fields["subject"].endswith(MARKER)
    assert experience.strip() in task.fields["description"]  # the full text where it fits
