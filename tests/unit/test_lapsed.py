"""customer.lapsed: open the plan, ask why once, segment, write it down, make it easy to return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.actions import AddToCampaign, SavePlan
from handlers.plan import Plan
from handlers.registry import handle
from tests.unit.rulesets import (
    default_rules,
    lapsed,
    later,
    one_task,
    plan_of,
    raw_rules,
    rules_from,
    suppressed,
    tasks,
    written,
)

QUESTIONS = (  # verbatim from METHOD.md, step 1
    "Why do you no longer use our products/services?",
    "Where do you obtain similar products or services now?",
    "What would encourage you to give us another chance?",
    "What would encourage you to stay with us for the long term?",
)


def handle_lapse(plan: Plan | None = None, **data: Any) -> Any:
    event = lapsed(**data)
    return handle(event, plan, default_rules(), later(event))


def test_high_value_lapse_opens_plan_with_discovery_prompts_and_offer_exactly() -> None:
    outcome = handle_lapse(competitor=None)
    assert written(outcome) == [
        ("CreateTask", "ACC-1#1:discovery"),
        ("CreateTask", "ACC-1#1:write-it-down.1"),
        ("CreateTask", "ACC-1#1:write-it-down.2"),
        ("CreateTask", "ACC-1#1:write-it-down.3"),
        ("CreateTask", "ACC-1#1:offer-guaranteed-refund-to-high-value"),
        ("SavePlan", "ACC-1#1"),
    ]
    plan = plan_of(outcome)
    assert (plan.key, plan.seq, plan.stage, plan.discovery) == ("ACC-1#1", 1, "discovering", "open")
    assert plan.opened_by == "evt-lapsed"


def test_discovery_task_carries_the_four_exit_interview_questions_for_the_owner() -> None:
    task = one_task(handle_lapse(), "discovery")
    assert task.subject == "Find out why Northwind Traders left"
    assert all(question in task.description for question in QUESTIONS)
    assert task.owner_id == "USR-ALICE"
    assert task.contact_id == "CON-1"
    assert task.due_at == datetime(2026, 11, 5, 9, tzinfo=UTC)  # event time + 3 days
    assert task.provenance.rule_id == "know-why-they-left"
    assert task.provenance.rules_version == default_rules().version


@pytest.mark.parametrize(
    ("annual_value", "route", "owner"),
    [
        (48000, "discovery", "USR-ALICE"),
        (10000, "discovery", "USR-ALICE"),  # the threshold itself is high value
        (None, "discovery", "USR-ALICE"),  # unknown value: don't drop them into a survey
        (9999.99, "survey", "USR-ALICE"),  # the shipped survey role is the account owner
        (0, "survey", "USR-ALICE"),
    ],
)
def test_segmentation_routes_low_value_lapses_to_a_survey_instead_of_a_personal_call(
    annual_value: float | None, route: str, owner: str
) -> None:
    outcome = handle_lapse(annual_value=annual_value)
    asked = [t for t in tasks(outcome) if t.kind in ("discovery", "survey")]
    assert [(t.kind, t.owner_id) for t in asked] == [(route, owner)]
    assert all(question in asked[0].description for question in QUESTIONS)
    plan = plan_of(outcome)
    assert plan.discovery == "open"
    assert plan.approach == ("survey" if route == "survey" else "individual")


def test_survey_adds_campaign_membership_when_a_campaign_is_configured() -> None:
    data = raw_rules()
    survey_rule = next(r for r in data["rules"] if r["id"] == "survey-low-value-lapses")
    survey_rule["then"][0]["add_to_survey"]["campaign_id"] = "701CAMPAIGN"
    event = lapsed(annual_value=500)
    outcome = handle(event, None, rules_from(data), later(event))
    members = [a for a in outcome.actions if isinstance(a, AddToCampaign)]
    assert [(m.key, m.campaign_id, m.contact_id) for m in members] == [
        ("ACC-1#1:survey-low-value-lapses:campaign", "701CAMPAIGN", "CON-1")]


def test_survey_without_a_contact_gets_the_survey_task_but_no_campaign_membership() -> None:
    data = raw_rules()
    survey_rule = next(r for r in data["rules"] if r["id"] == "survey-low-value-lapses")
    survey_rule["then"][0]["add_to_survey"]["campaign_id"] = "701CAMPAIGN"
    event = lapsed(annual_value=500, contact_id=None)
    outcome = handle(event, None, rules_from(data), later(event))
    assert [a for a in outcome.actions if isinstance(a, AddToCampaign)] == []
    assert [t.kind for t in tasks(outcome, "survey")] == ["survey"]


def test_owner_is_prompted_to_write_down_result_beliefs_and_new_experiences() -> None:
    prompts = tasks(handle_lapse(), "prompt")
    assert [t.subject for t in prompts] == [
        "Write down the result you want with Northwind Traders",
        "Write down the current beliefs of Northwind Traders, and the beliefs we want them to hold",
        "Decide the new experiences to create for Northwind Traders",
    ]
    assert "target beliefs" in prompts[1].description
    assert all(t.owner_id == "USR-ALICE" for t in prompts)


@pytest.mark.parametrize(
    ("data", "offer_title"),
    [
        ({"competitor": "Contoso", "annual_value": 48000}, "Three months at half price"),
        ({"competitor": "Contoso", "annual_value": 100}, "Three months at half price"),
        ({"annual_value": 48000}, "A guaranteed refund"),
        ({"annual_value": 100}, "A free 30-day trial"),
    ],
)
def test_one_offer_chosen_by_rule_makes_it_easy_to_return(
    data: dict[str, Any], offer_title: str
) -> None:
    offer = one_task(handle_lapse(**data), "offer")
    assert offer.subject == f"Make it easy for Northwind Traders to start again: {offer_title}"
    assert offer_title in offer.description
    assert "account ACC-1" in offer.description  # existing account details kept ready


def test_do_not_contact_suppresses_every_outreach_but_the_plan_records_the_lapse() -> None:
    outcome = handle_lapse(do_not_contact=True)
    assert {t.kind for t in tasks(outcome)} == {"prompt"}  # internal work only
    assert suppressed(outcome) == [
        ("discovery", "the customer is marked do-not-contact"),
        ("offer", "the customer is marked do-not-contact"),
    ]
    plan = plan_of(outcome)
    assert plan.do_not_contact
    assert plan.is_open
    assert plan.contacts == ()
    assert [s.key for s in plan.suppressed] == [
        "ACC-1#1:discovery", "ACC-1#1:offer-guaranteed-refund-to-high-value"]
    assert plan.discovery == "none"
    assert isinstance(outcome.actions[-1], SavePlan)


def test_second_lapse_while_plan_is_open_reuses_it_and_asks_no_second_time() -> None:
    first = handle_lapse()
    again = handle(lapsed(event_id="evt-again", at="2026-11-09T09:00"), first.plan,
                   default_rules(), datetime(2026, 11, 9, 9, 1, tzinfo=UTC))
    plan = plan_of(again)
    assert plan.key == "ACC-1#1"
    assert [t.kind for t in tasks(again)] == ["prompt", "prompt", "prompt"]  # same keys: upserts
    assert [(s.action, s.reason.split(" (")[0]) for s in again.suppressed] == [
        ("discovery", "already asked why they left"),
        ("offer", "ACC-1#1:offer-guaranteed-refund-to-high-value was already written for this plan"),
    ]
    assert len(plan.contacts) == 2


def test_lapse_after_a_closed_plan_opens_a_new_plan_and_keeps_the_old_as_history() -> None:
    closed = plan_of(handle_lapse()).model_copy(update={"stage": "lost", "outcome": "lost"})
    outcome = handle(lapsed(event_id="evt-2", at="2027-03-01T09:00"), closed, default_rules(),
                     datetime(2027, 3, 1, 9, 1, tzinfo=UTC))
    plan = plan_of(outcome)
    assert (plan.key, plan.seq, plan.stage, plan.discovery) == ("ACC-1#2", 2, "discovering", "open")
    assert one_task(outcome, "discovery").key == "ACC-1#2:discovery"
    assert plan.history[0].what == "plan ACC-1#2 opened: lapsed on 2026-11-01"


def test_lapse_without_owner_goes_to_the_accounts_owner_as_the_crm_knows_it() -> None:
    task = one_task(handle_lapse(owner_id=None), "discovery")
    assert (task.owner_id, task.assign) == (None, "account_owner")


def test_lapse_without_event_time_dates_tasks_from_the_clock() -> None:
    event = lapsed().model_copy(update={"time": None})
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    task = one_task(handle(event, None, default_rules(), now), "discovery")
    assert task.due_at == now + timedelta(days=3)


def test_plan_history_records_the_rules_version_and_rule_of_each_change() -> None:
    plan = plan_of(handle_lapse())
    assert [(c.rule_id, c.what) for c in plan.history] == [
        ("method", "plan ACC-1#1 opened: lapsed on 2026-11-01"),
        ("know-why-they-left", "approach: individual"),
        ("know-why-they-left", "asked why they left: discovery open"),
        ("offer-guaranteed-refund-to-high-value", "offered guaranteed_refund"),
    ]
    assert {c.rules_version for c in plan.history} == {default_rules().version}
    assert {c.event_id for c in plan.history} == {"evt-lapsed"}
