"""meeting.held: record what was learned, test for movement, check in on the cadence, move on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.actions import PublishEvent, ScheduleCheckIn, SetCheckInStatus
from handlers.events import Event
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.registry import handle
from handlers.rules.ruleset import RuleSet
from tests.unit.rulesets import (
    default_rules,
    lapsed,
    later,
    meeting,
    one_task,
    plan_of,
    suppressed,
    tasks,
    with_settings,
    written,
)

EXIT_AT = "2026-11-06T11:00"


def run(event: Event, plan: Plan | None, rules: RuleSet | None = None) -> Outcome:
    return handle(event, plan, rules or default_rules(), later(event, minutes=5))


def open_plan() -> Plan:
    event = lapsed()
    return plan_of(handle(event, None, default_rules(), later(event)))


def after_exit_interview(**data: Any) -> Outcome:
    fields: dict[str, Any] = {"kind": "exit_interview", "sentiment": -1}
    return run(meeting("m0", EXIT_AT, **{**fields, **data}), open_plan())


def checkins(outcome: Outcome) -> list[ScheduleCheckIn]:
    return [a for a in outcome.actions if isinstance(a, ScheduleCheckIn)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_exit_interview_records_notes_beliefs_result_experiences_and_feedback() -> None:
    outcome = after_exit_interview(
        notes="The silence hurt more than the outage.",
        desired_result="Renews in Q1 and refers us",
        current_beliefs=["Support ignores small tickets"],
        target_beliefs=["Support answers within 20 minutes"],
        new_experiences=["Named support engineer", "Proactive incident emails"],
        feedback=["Status page per region"],
    )
    plan = plan_of(outcome)
    assert plan.desired_result == "Renews in Q1 and refers us"
    assert plan.current_beliefs == ("Support ignores small tickets",)
    assert plan.target_beliefs == ("Support answers within 20 minutes",)
    assert plan.new_experiences == ("Named support engineer", "Proactive incident emails")
    assert plan.feedback == ("Status page per region",)
    assert plan.meetings[-1].notes == "The silence hurt more than the outage."
    assert (plan.discovery, plan.stage) == ("done", "re-engaging")


def test_each_new_experience_becomes_a_task_with_an_owner_and_due_date_once() -> None:
    first = after_exit_interview(new_experiences=["Named support engineer"])
    second = run(meeting("m1", "2026-11-13T11:00",
                         new_experiences=["Named support engineer", "Incident emails"]),
                 first.plan)
    assert [(t.key, t.owner_id, t.due_at) for t in tasks(second, "experience")] == [
        ("ACC-1#1:create-new-experiences:MTG-m1:1", "USR-ALICE", at("2026-11-27T11:00"))]
    assert tasks(second, "experience")[0].subject == (
        "Create a new experience for Northwind Traders: Incident emails")


@pytest.mark.parametrize(
    ("data", "stage"),
    [
        ({}, "planning"),
        ({"desired_result": "Renews", "target_beliefs": ["We answer"]}, "planning"),
        ({"desired_result": "Renews", "target_beliefs": ["We answer"],
          "new_experiences": ["Named engineer"]}, "re-engaging"),
        ({"kind": "check_in"}, "checking-in"),
    ],
)
def test_meeting_advances_the_stage_and_never_back(data: dict[str, Any], stage: str) -> None:
    plan = plan_of(after_exit_interview(**data)) if "kind" not in data else plan_of(
        run(meeting("m1", EXIT_AT, **data), open_plan()))
    assert plan.stage == stage
    later_catch_up = run(meeting("m9", "2026-11-08T11:00", kind="catch_up"), plan)
    assert plan_of(later_catch_up).stage == stage


@pytest.mark.parametrize(
    ("sentiments", "movements", "without_movement"),
    [
        ((-1, -1), (None, 0), 1),
        ((-1, 1), (None, 2), 0),
        ((0, -1), (None, -1), 1),
        ((None, 1), (None, None), 1),  # unknown movement is no evidence of movement
        ((-2, -2, -2), (None, 0, 0), 2),
        ((-2, -2, 0), (None, 0, 2), 0),  # positive movement resets the count
        ((-2, None, 0), (None, None, 2), 0),  # compared with the last known sentiment
    ],
)
def test_movement_is_sentiment_compared_with_the_previous_meeting(
    sentiments: tuple[int | None, ...], movements: tuple[int | None, ...], without_movement: int
) -> None:
    outcome = after_exit_interview(sentiment=sentiments[0])
    days = ["2026-11-13T11:00", "2026-12-06T11:00"]
    for n, sentiment in enumerate(sentiments[1:]):
        outcome = run(meeting(f"m{n + 1}", days[n], sentiment=sentiment), outcome.plan)
    plan = plan_of(outcome)
    assert tuple(m.movement for m in plan.meetings) == movements
    assert plan.checkins_without_movement == without_movement


def test_next_check_in_is_scheduled_on_the_cadence_from_the_first_meeting() -> None:
    outcome = after_exit_interview()
    (checkin,) = checkins(outcome)
    assert (checkin.key, checkin.slot, checkin.start_at) == (
        "ACC-1#1:checkin:1", 1, at("2026-11-13T11:00"))
    assert (checkin.owner_id, checkin.duration_minutes, checkin.contact_id) == (
        "USR-ALICE", 30, "CON-1")
    assert checkin.subject == "Check-in 1 with Northwind Traders"
    second = run(meeting("m1", "2026-11-13T11:00"), outcome.plan)
    assert [(c.slot, c.start_at) for c in checkins(second)] == [(2, at("2026-12-06T11:00"))]
    assert [(c.slot, c.status) for c in plan_of(second).checkins] == [(1, "done"), (2, "pending")]


def test_a_check_in_held_early_moves_to_when_it_was_held() -> None:
    outcome = after_exit_interview()  # check-in 1 booked for 2026-11-13 11:00, 30 minutes
    early = run(meeting("m1", "2026-11-11T16:30"), outcome.plan)
    (mark,) = [a for a in early.actions if isinstance(a, SetCheckInStatus)]
    assert (mark.keys, mark.status, mark.held_at, mark.duration_minutes) == (
        ("ACC-1#1:checkin:1",), "done", at("2026-11-11T16:30"), 30)
    assert next((c.slot, c.status, c.start_at) for c in plan_of(early).checkins) == (
        1, "done", at("2026-11-11T16:30"))


def test_never_two_pending_check_ins_for_the_same_slot() -> None:
    outcome = after_exit_interview()
    catch_up = run(meeting("m1", "2026-11-08T11:00", kind="catch_up"), outcome.plan)
    assert checkins(catch_up) == []
    assert [c.slot for c in plan_of(catch_up).pending_checkins] == [1]


def test_cadence_is_configurable_and_skips_slots_already_past() -> None:
    rules = with_settings(checkin_cadence_days=[1, 2, 14])
    event = lapsed()
    plan = plan_of(handle(event, None, rules, later(event)))
    exit_interview = run(meeting("m0", EXIT_AT, kind="exit_interview"), plan, rules)
    late = run(meeting("m1", "2026-11-09T11:00"), exit_interview.plan, rules)
    assert [(c.slot, c.start_at) for c in checkins(late)] == [(3, at("2026-11-20T11:00"))]


def test_no_check_in_once_the_cadence_is_used_up() -> None:
    outcome = after_exit_interview()
    outcome = run(meeting("m1", "2027-03-01T11:00", sentiment=1), outcome.plan)
    assert checkins(outcome) == []


def test_feedback_goes_to_marketing_as_a_task_and_a_winback_feedback_event() -> None:
    outcome = after_exit_interview(feedback=["Status page per region", "Invoices are confusing"])
    task = one_task(outcome, "feedback")
    assert (task.owner_id, task.assign) == ("USR-ALICE", None)  # the owner passes it on
    assert "- Status page per region" in task.description
    (event,) = [a for a in outcome.actions if isinstance(a, PublishEvent) and a.due_at is None]
    assert (event.key, event.routing_key) == (
        "ACC-1#1:feedback-to-marketing-and-product.2:MTG-m0:winback.feedback", "winback.feedback")
    assert event.payload == {
        "type": "winback.feedback", "account_id": "ACC-1", "plan_key": "ACC-1#1",
        "event_id": "m0", "rules_version": default_rules().version,
        "account_name": "Northwind Traders", "meeting_id": "MTG-m0",
        "held_at": "2026-11-06T11:00:00+00:00",
        "feedback": "Status page per region; Invoices are confusing",
    }


def test_meeting_without_feedback_sends_nothing_to_marketing() -> None:
    outcome = after_exit_interview()
    assert tasks(outcome, "feedback") == []
    assert not [a for a in outcome.actions if isinstance(a, PublishEvent) and a.due_at is None]


def test_revived_closes_the_plan_as_won_with_one_keep_it_that_way_follow_up() -> None:
    exit_interview = after_exit_interview(new_experiences=["Named support engineer"])
    outcome = run(meeting("m1", "2026-11-10T11:00", kind="catch_up", outcome="revived"),
                  exit_interview.plan)
    assert written(outcome) == [
        ("SetCheckInStatus:cancelled", "ACC-1#1:checkin:1"),
        ("CreateTask", "ACC-1#1:follow-up:won"),
        ("SavePlan", "ACC-1#1"),
    ]
    follow_up = one_task(outcome, "follow_up")
    assert follow_up.subject == "Keep it that way with Northwind Traders"
    assert "revived at the catch-up on 2026-11-10" in follow_up.description
    assert "Named support engineer" in follow_up.description
    plan = plan_of(outcome)
    assert (plan.stage, plan.outcome, plan.closed_at) == ("won", "won", at("2026-11-10T11:00"))
    assert plan.closing_reason == "revived at the catch-up on 2026-11-10"
    assert plan.pending_checkins == ()


def test_declined_closes_as_lost_cancels_pending_check_ins_and_stops_outreach() -> None:
    exit_interview = after_exit_interview()
    outcome = run(meeting("m1", "2026-11-10T11:00", kind="catch_up", outcome="declined",
                          feedback=["Too expensive"]), exit_interview.plan)
    assert written(outcome) == [
        ("CreateTask", "ACC-1#1:feedback-to-marketing-and-product.1:MTG-m1"),
        ("PublishEvent", "ACC-1#1:feedback-to-marketing-and-product.2:MTG-m1:winback.feedback"),
        ("SetCheckInStatus:cancelled", "ACC-1#1:checkin:1"),
        ("SavePlan", "ACC-1#1"),
    ]
    (cancel,) = [a for a in outcome.actions if isinstance(a, SetCheckInStatus)]
    assert cancel.reason == "plan closed as lost: declined at the catch up on 2026-11-10"
    plan = plan_of(outcome)
    assert (plan.stage, plan.outcome) == ("lost", "lost")
    assert [(c.slot, c.status) for c in plan.checkins] == [(1, "cancelled")]
    assert [t.rule_id for t in outcome.trace if t.skipped] == [
        "move-on-without-movement", "schedule-next-checkin"]


@pytest.mark.parametrize("move_on_after", [1, 2, 3])
def test_move_on_after_n_check_ins_without_positive_movement(move_on_after: int) -> None:
    rules = with_settings(move_on_after_checkins=move_on_after)
    event = lapsed()
    outcome = handle(event, None, rules, later(event))
    outcome = run(meeting("m0", EXIT_AT, kind="exit_interview", sentiment=-1), outcome.plan, rules)
    days = ["2026-11-13T11:00", "2026-12-06T11:00", "2027-01-05T11:00"]
    for n in range(move_on_after):
        assert plan_of(outcome).is_open
        outcome = run(meeting(f"m{n + 1}", days[n], sentiment=-1), outcome.plan, rules)
    plan = plan_of(outcome)
    assert (plan.stage, plan.closing_reason) == (
        "lost", f"no positive movement in {move_on_after} check-ins in a row")
    assert checkins(outcome) == []


def test_meeting_on_a_closed_plan_is_recorded_but_no_outreach_follows() -> None:
    declined = run(meeting("m1", "2026-11-10T11:00", kind="catch_up", outcome="declined"),
                   after_exit_interview().plan)
    outcome = run(meeting("m2", "2026-12-01T11:00", kind="catch_up", outcome="continuing"),
                  declined.plan)
    assert checkins(outcome) == []
    assert suppressed(outcome) == [
        ("check_in", "letting them go: no new plan, apology or offer within 180 days of a lost "
         "plan (ACC-1#1 closed 2026-11-10; cool-off until 2027-05-09)")]
    plan = plan_of(outcome)
    assert (plan.stage, [m.meeting_id for m in plan.meetings]) == (
        "lost", ["MTG-m0", "MTG-m1", "MTG-m2"])


def test_meeting_for_an_account_without_a_plan_writes_nothing() -> None:
    outcome = run(meeting("m1", EXIT_AT), None)
    assert (outcome.actions, outcome.plan) == ((), None)


def test_same_meeting_delivered_again_writes_nothing() -> None:
    first = after_exit_interview()
    again = run(meeting("m0-again", EXIT_AT, meeting_id="MTG-m0", kind="exit_interview"),
                first.plan)
    assert (again.actions, again.plan) == ((), first.plan)
