"""The method end to end: events through RabbitMQ, the real handlers and default rules, the CRM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers.figures import Acknowledgements, Figures, compute_figures
from handlers.registry import handle
from tests.adapters import ADAPTERS, complete_task, open_crm, salesforce_rows
from tests.integration.broker import (
    Names,
    channel,
    message_count,
    publish,
    take_all,
    take_all_routed,
    work_count,
)
from tests.integration.harness import make_consumer, make_settings, running
from tests.integration.story import DECLINED, LOST, STORY, WON, summary
from tests.sfserver.cast import MANAGER, OWNER
from tests.waiting import wait_until
from worker.crm.port import Crm
from worker.report.rollups import sync_acknowledgements
from worker.report.source import read_all
from worker.rules_source import load_rules

RULES = Path(__file__).parents[2] / "config" / "rules.yaml"

ESCALATED_TO = "the owner's manager"  # MANAGER in Salesforce; the embedded CRM knows no managers
EXPECTED_WON = [
    ("plan", "won", f"{WON}#1", "won", "drafted", ""),
    ("task", "discovery", f"{WON}#1:discovery", OWNER, "open", "story-01"),
    ("task", "prompt", f"{WON}#1:write-it-down.1", OWNER, "open", "story-01"),
    ("task", "prompt", f"{WON}#1:write-it-down.2", OWNER, "open", "story-01"),
    ("task", "prompt", f"{WON}#1:write-it-down.3", OWNER, "open", "story-01"),
    ("task", "offer", f"{WON}#1:offer-guaranteed-refund-to-high-value", OWNER, "open", "story-01"),
    ("task", "acknowledgement", f"{WON}#1:acknowledge-within-sla:CMP-1", OWNER, "open", "story-02"),
    ("task", "escalation", f"{WON}#1:escalate-severe-complaints:CMP-1", ESCALATED_TO, "open",
     "story-02"),
    ("email_draft", "apology", f"{WON}#1:apology", OWNER, "draft", "story-02"),
    ("task", "review", f"{WON}#1:apology:review", OWNER, "open", "story-02"),
    ("task", "acknowledgement", f"{WON}#1:acknowledge-within-sla:CMP-2", OWNER, "open", "story-03"),
    ("task", "note", f"{WON}#1:apologise-once:CMP-2:no-second-apology", OWNER, "open", "story-03"),
    ("task", "experience", f"{WON}#1:create-new-experiences:MTG-4:1", OWNER, "open", "story-04"),
    ("task", "feedback", f"{WON}#1:feedback-to-marketing-and-product.1:MTG-4",
     OWNER, "open", "story-04"),
    ("checkin", "checkin", f"{WON}#1:checkin:1", OWNER, "done", "story-04"),
    ("checkin", "checkin", f"{WON}#1:checkin:2", OWNER, "done", "story-05"),
    ("checkin", "checkin", f"{WON}#1:checkin:3", OWNER, "done", "story-06"),
    ("task", "follow_up", f"{WON}#1:follow-up:won", OWNER, "open", "story-07"),
]
EXPECTED_LOST = [
    ("plan", "lost", f"{LOST}#1", "lost", "none", ""),
    ("task", "discovery", f"{LOST}#1:discovery", OWNER, "open", "story-08"),
    ("task", "prompt", f"{LOST}#1:write-it-down.1", OWNER, "open", "story-08"),
    ("task", "prompt", f"{LOST}#1:write-it-down.2", OWNER, "open", "story-08"),
    ("task", "prompt", f"{LOST}#1:write-it-down.3", OWNER, "open", "story-08"),
    ("task", "offer", f"{LOST}#1:offer-guaranteed-refund-to-high-value", OWNER, "open", "story-08"),
    ("checkin", "checkin", f"{LOST}#1:checkin:1", OWNER, "done", "story-09"),
    ("checkin", "checkin", f"{LOST}#1:checkin:2", OWNER, "done", "story-10"),
    ("checkin", "checkin", f"{LOST}#1:checkin:3", OWNER, "done", "story-11"),
    # Let them go: the complaint in the cool-off is acknowledged and escalated on the lost plan.
    ("task", "acknowledgement", f"{LOST}#1:acknowledge-within-sla:CMP-3", OWNER, "open", "story-17"),
    ("task", "escalation", f"{LOST}#1:escalate-severe-complaints:CMP-3", ESCALATED_TO, "open",
     "story-17"),
]
EXPECTED_DECLINED = [
    ("plan", "lost", f"{DECLINED}#1", "lost", "none", ""),
    ("task", "survey", f"{DECLINED}#1:survey-low-value-lapses", OWNER, "open", "story-14"),
    ("task", "prompt", f"{DECLINED}#1:write-it-down.1", OWNER, "open", "story-14"),
    ("task", "prompt", f"{DECLINED}#1:write-it-down.2", OWNER, "open", "story-14"),
    ("task", "prompt", f"{DECLINED}#1:write-it-down.3", OWNER, "open", "story-14"),
    ("task", "offer", f"{DECLINED}#1:offer-free-trial", OWNER, "open", "story-14"),
    ("checkin", "checkin", f"{DECLINED}#1:checkin:1", OWNER, "cancelled", "story-15"),
]


def run_story(names: Names, crm: Crm, tmp_path: Path) -> list[tuple[str, dict[str, object]]]:
    """Publish the story, run the worker until it has settled every event; the feedback events."""
    settings = make_settings(names, tmp_path)
    feedback_queue = f"{names.prefix}.feedback-listener"
    with channel() as ch:
        ch.queue_declare(feedback_queue, exclusive=False, auto_delete=False)
        ch.queue_bind(feedback_queue, settings.exchange, routing_key="winback.feedback")
    for event in STORY:
        publish(names, event)
    consumer, _, _ = make_consumer(settings, crm=crm, handle=handle, rules=load_rules(RULES))
    with running(consumer):
        wait_until(lambda: work_count(settings) == 0 and len(crm.records()) > 0,
                   timeout=60, what="the story to be handled")
        assert consumer.wait_settled(60), "the story settled"
    assert message_count(settings.parking_queue) == 0, take_all(settings.parking_queue)
    feedback = [(key, json.loads(body)) for key, _, body in take_all_routed(feedback_queue)]
    with channel() as ch:
        ch.queue_delete(feedback_queue)
    return feedback


def _manager(row: tuple[str, ...], crm: Crm) -> tuple[str, ...]:
    # The escalation goes to the owner's manager: Salesforce knows them, the embedded CRM does not
    # (the integration user, shown as no owner, gets it there).
    who = MANAGER if crm.name == "salesforce" else ""
    return tuple(who if field == ESCALATED_TO else field for field in row)


def assert_story_records(crm: Crm) -> None:
    # The same records whichever CRM; adapters may list them in their own order.
    assert sorted(summary(crm.records(WON))) == sorted(_manager(r, crm) for r in EXPECTED_WON)
    assert sorted(summary(crm.records(LOST))) == sorted(_manager(r, crm) for r in EXPECTED_LOST)
    assert sorted(summary(crm.records(DECLINED))) == sorted(EXPECTED_DECLINED)
    won_plan = next(r for r in crm.records(WON) if r.kind == "plan").fields
    assert [m["movement"] for m in won_plan["meetings"]] == [None, 0, 2, 1]
    assert [s["action"] for s in won_plan["suppressed"]] == ["apology"]
    lost_plan = next(r for r in crm.records(LOST) if r.kind == "plan").fields
    assert lost_plan["closing_reason"] == "no positive movement in 3 check-ins in a row"
    let_go = ("letting them go: no new plan, apology or offer within 180 days of a lost plan "
              f"({LOST}#1 closed 2027-01-05; cool-off until 2027-07-04)")
    assert [(s["action"], s["key"], s["reason"]) for s in lost_plan["suppressed"]
            if s["event_id"] == "story-17"] == [
        ("plan", f"{LOST}#2", let_go), ("apology", f"{LOST}#1:apology", let_go)]
    assert lost_plan["complaints"] == ["CMP-3"]
    assert_calendar(crm)
    apology = next(r for r in crm.records(WON) if r.kind == "email_draft").fields
    assert "We waited three weeks for a reply to ticket 4411." in apology["body_text"]


def assert_calendar(crm: Crm) -> None:
    """The check-in held a day early moved to when it was held; the cancelled one says so."""
    checkins = {r.key: r.fields for r in crm.records() if r.kind == "checkin"}
    assert checkins[f"{WON}#1:checkin:1"]["start_at"] == "2026-11-15T14:00:00Z"
    assert checkins[f"{WON}#1:checkin:2"]["start_at"] == "2026-12-09T14:00:00Z"
    assert checkins[f"{DECLINED}#1:checkin:1"]["subject"] == "Cancelled: Check-in 1 with Fabrikam"


@pytest.fixture(params=ADAPTERS)
def story_crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    """The same story against the embedded CRM and, over HTTPS, the Salesforce adapter."""
    with open_crm(request.param, tmp_path) as adapter:
        yield adapter


def test_the_method_plays_out_for_a_won_a_lost_and_a_declined_account(
    names: Names, story_crm: Crm, tmp_path: Path
) -> None:
    feedback = run_story(names, story_crm, tmp_path)
    assert_story_records(story_crm)
    assert len(feedback) == 1
    routing, payload = feedback[0]
    assert routing == "winback.feedback"
    assert payload["account_id"] == WON
    assert_story_figures(story_crm)
    assert_report_fields(story_crm)
    assert_acknowledgement_fields(story_crm)


def assert_acknowledgement_fields(crm: Crm) -> None:
    """The figure sampler's roll-up: each plan's acknowledgements as its fields, in either CRM."""
    plans, tasks = read_all(crm)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    # CMP-1 acknowledged at 10:05 (due 10:20), CMP-2 at 17:00 (due 15:50): the latest is 17:00.
    won = Acknowledgements(datetime(2026, 11, 5, 17, tzinfo=UTC), in_sla=1, late=1, pending=0)
    # Tailspin's CMP-3, in the cool-off, is still open past its due time: late. Fabrikam had no
    # complaint; its fields stay empty, which reads as zero.
    lost = Acknowledgements(None, in_sla=0, late=1, pending=0)
    assert sync_acknowledgements(crm, plans, tasks, now) == {f"{WON}#1": won, f"{LOST}#1": lost}
    assert crm.acknowledgements()[f"{WON}#1"] == won
    assert sync_acknowledgements(crm, plans, tasks, now) == {}  # unchanged: nothing written again
    rows = salesforce_rows(crm, "Winback_Plan__c")
    if rows is not None:
        row = next(r for r in rows if r["Plan_Key__c"] == f"{WON}#1")
        assert (row["Acknowledged_At__c"], row["Acks_In_SLA__c"], row["Acks_Late__c"],
                row["Acks_Pending__c"]) == ("2026-11-05T17:00:00.000+0000", 1, 1, 0)


def assert_report_fields(crm: Crm) -> None:
    """In Salesforce, the plan carries the report fields and a timeline a person can read."""
    rows = salesforce_rows(crm, "Winback_Plan__c")
    if rows is None:
        return  # the embedded CRM keeps the plan state only; `winback plan show` reads it
    won = next(r for r in rows if r["Plan_Key__c"] == f"{WON}#1")
    assert (won["Won_At__c"], won["Lost_At__c"]) == ("2027-01-08T14:00:00.000+0000", None)
    assert won["First_Contact_At__c"] == "2026-11-09T14:00:00.000+0000"
    assert (won["Last_Movement__c"], won["Complaints__c"], won["Suppressions__c"]) == (1, 2, 1)
    lines = str(won["Timeline__c"]).splitlines()
    assert "story-07 [revived-close-as-won] closed as won" in lines[0]
    assert any("[apologise-once] suppressed apology" in line for line in lines)
    lost = next(r for r in rows if r["Plan_Key__c"] == f"{LOST}#1")
    # CMP-3, in the cool-off, comes last; its acknowledgement is owed, so its timer waits on top.
    newest = str(lost["Timeline__c"]).splitlines()[:5]
    assert "[acknowledge-within-sla] timer pending" in newest[0], newest
    assert any(f"story-17 [method] suppressed plan {LOST}#2: letting them go" in line
               for line in newest), newest
    assert lost["Complaints__c"] == 1
    assert won["SLA_Breaches__c"] == 0  # the timers came after the plan was won: nothing to escalate
    # The one suppression, a record of the plan that reports group by reason and rule.
    (suppressed,) = [r for r in salesforce_rows(crm, "Winback_Suppression__c") or []
                     if r["Plan__c"] == won["Id"]]
    assert suppressed["Plan__c"] == won["Id"]
    assert {k: suppressed[k] for k in ("Winback_Key__c", "At__c", "Event_Id__c", "Rule_Id__c",
                                       "Action__c", "Reason_Code__c", "Reason__c")} == {
        "Winback_Key__c": f"{WON}#1:suppressed:1", "At__c": "2026-11-05T15:30:00.000+0000",
        "Event_Id__c": "story-03", "Rule_Id__c": "apologise-once", "Action__c": "apology",
        "Reason_Code__c": "once_per_plan", "Reason__c": "already apologised once on this plan"}


def assert_story_figures(crm: Crm) -> None:
    """The report's figures for the story, worked out by hand from the events in story.py."""
    # The owner acknowledges CMP-1 (logged 10:00, due 10:20) at 10:05 and CMP-2 (due 15:50) at 17:00.
    complete_task(crm, f"{WON}#1:acknowledge-within-sla:CMP-1", datetime(2026, 11, 3, 10, 5, tzinfo=UTC))
    complete_task(crm, f"{WON}#1:acknowledge-within-sla:CMP-2", datetime(2026, 11, 5, 17, tzinfo=UTC))
    plans, tasks = read_all(crm)
    [figures] = compute_figures(plans, tasks, datetime(2027, 3, 1, tzinfo=UTC))
    assert figures == Figures(
        group="all", opened=3, won=1, lost=2, open_by_stage={}, win_rate=0.3333,
        days_to_win=67.21,  # lapse event 2026-11-02 09:00 to the revived meeting 2027-01-08 14:00
        hours_to_first_contact=173.0,  # exit interviews after 100.5 h, 173 h and 196 h
        sla_met=1, sla_late=2, sla_not_yet=0,  # Tailspin's CMP-3 (let go) is never acknowledged
        checkins_held=6, checkins_scheduled=7,  # Fabrikam's one slot was cancelled, never held
        movement_share=0.3333,  # Northwind's 2nd and 3rd check-ins moved; Tailspin's never did
        suppressions={
            "already apologised once on this plan (apologise-once)": 1,
            # Tailspin's CMP-3 in the cool-off: neither a new plan nor an apology
            "letting them go: no new plan, apology or offer within 180 days of a lost plan "
            "(apologise-once)": 1,
            "letting them go: no new plan, apology or offer within 180 days of a lost plan "
            "(method)": 1})
