"""Let them go: after a lost plan, a complaint is still acknowledged, but no new plan follows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from handlers.actions import PublishEvent
from handlers.events import Event, parse_event
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.registry import handle
from handlers.rules.ruleset import RuleSet
from handlers.timer import with_observed
from tests.unit.rulesets import (
    complaint,
    default_rules,
    lapsed,
    later,
    meeting,
    plan_of,
    with_settings,
    written,
)

# Northwind's plan closes as lost at the catch-up on 2026-11-10 11:00.
CLOSED_ON = "2026-11-10T11:00"


def _step(event: Event, plan: Plan | None, rules: RuleSet | None = None) -> Outcome:
    return handle(event, plan, rules or default_rules(), later(event, minutes=2))


def lost_plan(rules: RuleSet | None = None) -> Plan:
    plan = plan_of(_step(lapsed(), None, rules))
    plan = plan_of(_step(meeting("m0", "2026-11-06T11:00", kind="exit_interview"), plan, rules))
    declined = _step(meeting("m1", CLOSED_ON, kind="catch_up", outcome="declined"), plan, rules)
    assert plan_of(declined).stage == "lost"
    return plan_of(declined)


HIGH = {"severity": "high", "complaint_id": "CMP-9"}


@pytest.mark.parametrize(
    ("at", "cooloff", "expected"),
    [
        # in the cool-off: acknowledged and escalated on the lost plan, no apology, no new plan
        ("2026-11-20T10:00", None, [
            ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-9"),
            ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-9:timer"),
            ("CreateTask", "ACC-1#1:escalate-severe-complaints:CMP-9"),
            ("SavePlan", "ACC-1#1"),
        ]),
        ("2027-05-08T10:00", None, [  # the last day of the 180
            ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-9"),
            ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-9:timer"),
            ("CreateTask", "ACC-1#1:escalate-severe-complaints:CMP-9"),
            ("SavePlan", "ACC-1#1"),
        ]),
        # after it (or with no cool-off at all) a complaint opens a new plan, with its apology
        ("2027-05-09T12:00", None, [
            ("CreateTask", "ACC-1#2:acknowledge-within-sla:CMP-9"),
            ("PublishEvent", "timer:ACC-1#2:acknowledge-within-sla:CMP-9:timer"),
            ("CreateTask", "ACC-1#2:escalate-severe-complaints:CMP-9"),
            ("DraftEmail", "ACC-1#2:apology"),
            ("CreateTask", "ACC-1#2:apology:review"),
            ("SavePlan", "ACC-1#2"),
        ]),
        ("2026-11-20T10:00", 0, [
            ("CreateTask", "ACC-1#2:acknowledge-within-sla:CMP-9"),
            ("PublishEvent", "timer:ACC-1#2:acknowledge-within-sla:CMP-9:timer"),
            ("CreateTask", "ACC-1#2:escalate-severe-complaints:CMP-9"),
            ("DraftEmail", "ACC-1#2:apology"),
            ("CreateTask", "ACC-1#2:apology:review"),
            ("SavePlan", "ACC-1#2"),
        ]),
        ("2026-11-20T10:00", 5, [  # a shorter cool-off, configured
            ("CreateTask", "ACC-1#2:acknowledge-within-sla:CMP-9"),
            ("PublishEvent", "timer:ACC-1#2:acknowledge-within-sla:CMP-9:timer"),
            ("CreateTask", "ACC-1#2:escalate-severe-complaints:CMP-9"),
            ("DraftEmail", "ACC-1#2:apology"),
            ("CreateTask", "ACC-1#2:apology:review"),
            ("SavePlan", "ACC-1#2"),
        ]),
    ],
)
def test_a_complaint_after_a_lost_plan_is_acknowledged_and_a_new_plan_waits_for_the_cool_off(
    at: str, cooloff: int | None, expected: list[tuple[str, str]]
) -> None:
    rules = default_rules() if cooloff is None else with_settings(move_on_cooloff_days=cooloff)
    outcome = _step(complaint("evt-late", at, **HIGH), lost_plan(rules), rules)
    assert written(outcome) == expected


def test_the_suppressed_plan_and_apology_are_recorded_with_their_reason() -> None:
    outcome = _step(complaint("evt-late", "2026-11-20T10:00", **HIGH), lost_plan())
    reason = ("letting them go: no new plan, apology or offer within 180 days of a lost plan "
              "(ACC-1#1 closed 2026-11-10; cool-off until 2027-05-09)")
    assert [(s.action, s.key, s.reason) for s in outcome.suppressed] == [
        ("plan", "ACC-1#2", reason), ("apology", "ACC-1#1:apology", reason)]
    plan = plan_of(outcome)
    assert (plan.key, plan.stage, plan.complaints) == ("ACC-1#1", "lost", ("CMP-9",))
    assert [s.key for s in plan.suppressed] == ["ACC-1#2", "ACC-1#1:apology"]
    assert f"suppressed plan ACC-1#2: {reason}" in [c.what for c in plan.history]


def test_the_acknowledgement_is_due_within_the_sla_on_the_lost_plan() -> None:
    event = complaint("evt-late", "2026-11-20T10:00", **HIGH)
    outcome = _step(event, lost_plan())
    (ack,) = [a for a in outcome.actions if getattr(a, "kind", None) == "acknowledgement"]
    assert event.time is not None
    assert (ack.due_at, ack.priority) == (event.time + timedelta(minutes=20), "high")  # type: ignore[attr-defined]


def test_a_lapse_in_the_cool_off_opens_no_plan_and_writes_nothing() -> None:
    outcome = _step(lapsed("evt-again", "2026-12-01T09:00"), lost_plan())
    assert written(outcome) == [("SavePlan", "ACC-1#1")]
    assert [(s.action, s.key) for s in outcome.suppressed] == [("plan", "ACC-1#2")]
    assert plan_of(outcome).stage == "lost"


def test_a_won_plan_does_not_cool_off() -> None:
    plan = plan_of(_step(lapsed(), None))
    plan = plan_of(_step(meeting("m0", "2026-11-06T11:00", kind="exit_interview",
                                 outcome="revived"), plan))
    assert plan.stage == "won"
    outcome = _step(complaint("evt-late", "2026-11-20T10:00"), plan)
    assert ("DraftEmail", "ACC-1#2:apology") in written(outcome)


def test_an_acknowledgement_not_done_in_the_cool_off_is_still_escalated() -> None:
    outcome = _step(complaint("evt-late", "2026-11-20T10:00", **HIGH), lost_plan())
    (timer,) = [a for a in outcome.actions if isinstance(a, PublishEvent)]
    due = with_observed(parse_event(json.dumps(timer.payload)), "open")
    assert timer.due_at is not None
    fired = handle(due, plan_of(outcome), default_rules(), timer.due_at + timedelta(seconds=1))
    assert written(fired) == [
        ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-9:late1"),  # to the managers
        ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-9:timer:2"),
        ("SavePlan", "ACC-1#1"),
    ]
