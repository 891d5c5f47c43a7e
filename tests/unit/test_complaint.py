"""complaint.logged: acknowledge within the SLA in the customer's words, escalate, apologise once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.actions import DraftEmail
from handlers.events import Event
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.registry import handle
from handlers.rules.ruleset import RuleSet
from tests.unit.rulesets import (
    complaint,
    default_rules,
    lapsed,
    later,
    one_task,
    plan_of,
    suppressed,
    tasks,
    with_settings,
    written,
)

LOGGED = datetime(2026, 11, 3, 10, tzinfo=UTC)


def open_plan() -> Plan:
    event = lapsed()
    return plan_of(handle(event, None, default_rules(), later(event)))


def run(event: Event, plan: Plan | None, rules: RuleSet | None = None) -> Outcome:
    return handle(event, plan, rules or default_rules(), later(event, minutes=3))


def drafts(outcome: Outcome) -> list[DraftEmail]:
    return [a for a in outcome.actions if isinstance(a, DraftEmail)]


def test_first_complaint_writes_acknowledgement_apology_draft_and_review_exactly() -> None:
    outcome = run(complaint(), open_plan())
    assert written(outcome) == [
        ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-1"),
        ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-1:timer"),
        ("DraftEmail", "ACC-1#1:apology"),
        ("CreateTask", "ACC-1#1:apology:review"),
        ("SavePlan", "ACC-1#1"),
    ]
    plan = plan_of(outcome)
    assert (plan.apology, plan.apology_key, plan.complaints) == (
        "drafted", "ACC-1#1:apology", ("CMP-1",))


def test_acknowledgement_is_high_priority_due_within_sla_with_reminder_quoting_verbatim() -> None:
    summary = "  Nobody answered ticket 4411 -- for THREE weeks!!  "
    ack = one_task(run(complaint(summary=summary), open_plan()), "acknowledgement")
    assert ack.priority == "high"
    assert ack.due_at == LOGGED + timedelta(minutes=20)
    assert ack.reminder_at == ack.due_at
    assert f'"{summary}"' in ack.description  # in the customer's own words, untouched
    assert ack.owner_id == "USR-ALICE"
    assert ack.subject == "Acknowledge the complaint from Northwind Traders within 20 minutes"


def test_sla_is_configurable_and_counts_from_logged_at_not_the_clock() -> None:
    event = complaint()
    outcome = handle(event, open_plan(), with_settings(sla_minutes=45),
                     LOGGED + timedelta(hours=5))
    ack = one_task(outcome, "acknowledgement")
    assert ack.due_at == LOGGED + timedelta(minutes=45)  # overdue already: visible as such


@pytest.mark.parametrize(
    ("severity", "escalated"),
    [("low", False), ("medium", False), ("high", True), ("critical", True)],
)
def test_complaint_is_escalated_to_managers_by_severity(severity: str, escalated: bool) -> None:
    outcome = run(complaint(severity=severity), open_plan())
    found = tasks(outcome, "escalation")
    assert bool(found) is escalated
    if escalated:
        (task,) = found
        # The account owner's manager, whom only the CRM knows: the task says whose manager.
        assert (task.owner_id, task.assign, task.priority) == (
            "USR-ALICE", "account_owner_manager", "high")
        assert task.due_at == LOGGED + timedelta(minutes=20)
        assert "We waited three weeks for a reply to ticket 4411." in task.description


def test_apology_is_a_draft_that_names_the_failure_in_their_words_and_what_has_changed() -> None:
    plan = open_plan().model_copy(update={"new_experiences": ("A named support engineer",)})
    (draft,) = drafts(run(complaint(), plan))
    assert draft.kind == "apology"
    assert (draft.owner_id, draft.to_address, draft.contact_id) == (
        "USR-ALICE", "dana@northwind.example", "CON-1")
    for body in (draft.body_html, draft.body_text):
        assert "We waited three weeks for a reply to ticket 4411." in body
        assert "A named support engineer" in body
        assert "Dear Dana Reyes" in body


@pytest.mark.parametrize("phrase", [
    *default_rules().settings.come_back_phrases, *default_rules().settings.banned_phrases])
def test_apology_never_asks_them_to_come_back_nor_uses_banned_phrases(phrase: str) -> None:
    plan = open_plan().model_copy(update={"new_experiences": ("Faster replies",)})
    (draft,) = drafts(run(complaint(), plan))
    for text in (draft.subject, draft.body_html, draft.body_text):
        assert phrase.casefold() not in text.casefold()


def test_apology_without_new_experiences_tells_the_owner_to_say_what_has_changed() -> None:
    (draft,) = drafts(run(complaint(), open_plan()))
    assert "[Before sending: say what has changed" in draft.body_text


def test_complaint_text_is_escaped_in_html_and_never_runs_as_template_code() -> None:
    summary = "<script>alert(1)</script> {{ 7 * 7 }} {% if true %}x{% endif %}"
    outcome = run(complaint(summary=summary), open_plan())
    (draft,) = drafts(outcome)
    assert "<script>" not in draft.body_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in draft.body_html
    assert "{{ 7 * 7 }}" in draft.body_html
    assert "49" not in draft.body_html
    assert summary in one_task(outcome, "acknowledgement").description  # text stays literal


def test_second_complaint_gets_acknowledgement_not_second_apology() -> None:
    first = run(complaint(), open_plan())
    second = run(complaint(event_id="evt-2", complaint_id="CMP-2", at="2026-11-05T15:30",
                           summary="Your invoice still charges us for the seats we cancelled."),
                 first.plan)
    assert written(second) == [
        ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-2"),
        ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-2:timer"),
        ("CreateTask", "ACC-1#1:apologise-once:CMP-2:no-second-apology"),
        ("SavePlan", "ACC-1#1"),
    ]
    note = one_task(second, "note")
    assert note.subject == "Northwind Traders complained again: acknowledge it, no second apology"
    assert '"Your invoice still charges us for the seats we cancelled."' in note.description
    assert suppressed(second) == [
        ("apology", "already apologised once on this plan (ACC-1#1:apology)")]
    plan = plan_of(second)
    assert plan.complaints == ("CMP-1", "CMP-2")
    assert [s.key for s in plan.suppressed] == ["ACC-1#1:apology"]


def test_complaint_with_no_plan_opens_one_because_a_complaint_is_a_churn_risk() -> None:
    outcome = run(complaint(account_name="Northwind Traders", contact_email="d@n.example"), None)
    plan = plan_of(outcome)
    assert (plan.key, plan.stage, plan.opened_by) == ("ACC-1#1", "discovering", "evt-complaint")
    assert plan.opened_at == LOGGED
    assert plan.history[0].what == "plan ACC-1#1 opened: complaint CMP-1 logged"
    assert [d.to_address for d in drafts(outcome)] == ["d@n.example"]


def test_complaint_after_a_closed_plan_opens_the_next_plan() -> None:
    won = open_plan().model_copy(update={"stage": "won", "outcome": "won", "apology": "drafted"})
    outcome = run(complaint(), won)
    plan = plan_of(outcome)
    assert (plan.key, plan.seq, plan.apology) == ("ACC-1#2", 2, "drafted")
    assert [d.key for d in drafts(outcome)] == ["ACC-1#2:apology"]


def test_complaint_without_account_name_uses_the_account_id_in_texts() -> None:
    ack = one_task(run(complaint(), None), "acknowledgement")
    assert ack.subject == "Acknowledge the complaint from ACC-1 within 20 minutes"


def test_same_complaint_delivered_again_writes_nothing() -> None:
    first = run(complaint(), open_plan())
    again = run(complaint(event_id="evt-redelivered"), first.plan)
    assert again.actions == ()
    assert again.plan == first.plan
    assert [t.reason for t in again.trace] == [
        "complaint CMP-1 is already recorded on plan ACC-1#1"]


def test_do_not_contact_complaint_is_acknowledged_but_no_apology_is_drafted() -> None:
    outcome = run(complaint(do_not_contact=True), open_plan())
    assert written(outcome) == [
        ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-1"),
        ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-1:timer"),
        ("SavePlan", "ACC-1#1"),
    ]
    assert suppressed(outcome) == [("apology", "the customer is marked do-not-contact")]
    plan = plan_of(outcome)
    assert plan.do_not_contact
    assert plan.apology == "none"


def test_do_not_contact_from_the_lapse_stays_for_the_plan() -> None:
    event = lapsed(do_not_contact=True)
    plan = plan_of(handle(event, None, default_rules(), later(event)))
    outcome = run(complaint(do_not_contact=False), plan)
    assert drafts(outcome) == []
    assert plan_of(outcome).do_not_contact


def test_apology_over_the_contact_budget_is_suppressed_with_the_reason() -> None:
    rules = with_settings(contact_budget={"max_actions": 2, "per_days": 30})
    event = lapsed()
    plan = plan_of(handle(event, None, rules, later(event)))  # discovery + offer: 2 contacts
    outcome = run(complaint(), plan, rules)
    assert drafts(outcome) == []
    ((action, reason),) = suppressed(outcome)
    assert action == "apology"
    assert reason.startswith("contact budget reached: 2 outreach actions in the 30 days")


def test_account_name_is_escaped_in_the_html_apology() -> None:
    extra: dict[str, Any] = {"account_name": "<b>Bold & Co</b>", "region": "EMEA"}
    outcome = run(complaint(**extra), None)
    (draft,) = drafts(outcome)
    assert "&lt;b&gt;Bold &amp; Co&lt;/b&gt;" in draft.body_html
