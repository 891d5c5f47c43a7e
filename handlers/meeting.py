"""``crm.meeting.held``: record what was learned and the movement, advance the stage, then the rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from handlers.actions import Provenance, SetCheckInStatus
from handlers.errors import InvalidEventError
from handlers.events import Event, MeetingData
from handlers.outcome import Outcome, RuleTrace
from handlers.pipeline import METHOD, finish, record, run_rules
from handlers.plan import CheckIn, Meeting, Plan, Stage, amended
from handlers.rules.ruleset import RuleSet

# The open stages in the order the method moves through them; a plan never moves backwards.
OPEN_STAGES: tuple[Stage, ...] = ("discovering", "planning", "re-engaging", "checking-in")


def meeting_data(event: Event) -> MeetingData:
    if not isinstance(event.data, MeetingData):
        raise InvalidEventError(f"{event.type} event {event.id} does not carry meeting data")
    return event.data


def _merge(known: tuple[str, ...], new: list[str]) -> tuple[str, ...]:
    return (*known, *(item for item in dict.fromkeys(new) if item not in known))


def movement_of(plan: Plan, data: MeetingData) -> int | None:
    """Sentiment now minus at the last meeting that recorded one; ``None`` when either is unknown."""
    before = plan.last_sentiment
    return None if data.sentiment is None or before is None else data.sentiment - before


def _without_movement(plan: Plan, data: MeetingData, movement: int | None) -> int:
    # Positive movement at any meeting resets the count; a check-in without it adds one.
    if movement is not None and movement > 0:
        return 0
    return plan.checkins_without_movement + (1 if data.kind == "check_in" else 0)


def next_stage(plan: Plan, kind: str) -> Stage:
    """Discovery is over once they have talked to us; a written plan means re-engaging."""
    if not plan.is_open:
        return plan.stage
    target: Stage = "planning"
    if plan.desired_result and plan.target_beliefs and plan.new_experiences:
        target = "re-engaging"
    if kind == "check_in":
        target = "checking-in"
    return max(plan.stage, target, key=OPEN_STAGES.index)


def _checkins_after(plan: Plan, data: MeetingData) -> tuple[CheckIn, ...]:
    # A check-in meeting keeps the earliest pending check-in: it is the one that took place.
    pending = plan.pending_checkins
    if data.kind != "check_in" or not pending:
        return plan.checkins
    kept = pending[0].slot
    held = {"status": "done", "start_at": data.held_at}  # when it took place, as the calendar
    return tuple(c.model_copy(update=held) if c.slot == kept else c for c in plan.checkins)


def _recorded(plan: Plan, data: MeetingData, movement: int | None) -> Plan:
    meeting = Meeting(meeting_id=data.meeting_id, held_at=data.held_at, kind=data.kind,
                      sentiment=data.sentiment, movement=movement, notes=data.notes)
    updated = amended(plan, {
        "meetings": (*plan.meetings, meeting),
        "desired_result": data.desired_result or plan.desired_result,
        "current_beliefs": _merge(plan.current_beliefs, data.current_beliefs),
        "target_beliefs": _merge(plan.target_beliefs, data.target_beliefs),
        "new_experiences": _merge(plan.new_experiences, data.new_experiences),
        "feedback": _merge(plan.feedback, data.feedback),
        "checkins": _checkins_after(plan, data),
        "checkins_without_movement": _without_movement(plan, data, movement),
        "discovery": "done" if data.kind == "exit_interview" else plan.discovery,
    })
    return amended(updated, {"stage": next_stage(updated, data.kind)})


def _describe(plan: Plan, data: MeetingData, movement: int | None, stage: str) -> str:
    shown = "unknown" if movement is None else f"{movement:+d}"
    moved = f"; stage {plan.stage} → {stage}" if stage != plan.stage else ""
    return (f"{data.kind} {data.meeting_id} recorded: sentiment {data.sentiment}, "
            f"movement {shown}{moved}")


def handle_meeting(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Record notes, beliefs and movement; then feedback, closing and the next check-in by rule."""
    data = meeting_data(event)
    if plan is None:
        why = "no win-back plan for this account: the meeting is not part of one"
        return finish([], None, None, [RuleTrace(METHOD, False, why)], [])
    if any(m.meeting_id == data.meeting_id for m in plan.meetings):
        why = f"meeting {data.meeting_id} is already recorded on plan {plan.key}"
        return finish([], plan, plan, [RuleTrace(METHOD, False, why)], [])
    movement = movement_of(plan, data)
    updated = _recorded(plan, data, movement)
    start = record(updated, event, rules, now, METHOD,
                   _describe(plan, data, movement, updated.stage))
    derived = {
        "movement": movement,
        "previous_sentiment": plan.last_sentiment,
        "added_experiences": [e for e in start.new_experiences if e not in plan.new_experiences],
    }
    outcome = run_rules(event, plan, start, rules, now, derived)
    return _with_completed_checkins(outcome, plan, updated, event, rules)


def _with_completed_checkins(outcome: Outcome, before: Plan, after: Plan, event: Event,
                             rules: RuleSet) -> Outcome:
    """The check-in this meeting fulfilled is marked done in the CRM too, not only on the plan."""
    was_pending = {c.key for c in before.pending_checkins}
    done = [c for c in after.checkins if c.status == "done" and c.key in was_pending]
    if not done:
        return outcome
    data = meeting_data(event)
    # The calendar tells the truth: the check-in moves to when it was held (early or late).
    mark = SetCheckInStatus(before.key, before.account_id, tuple(c.key for c in done), "done",
                            f"held as meeting {data.meeting_id}",
                            Provenance(event.id, METHOD, rules.version),
                            held_at=data.held_at, duration_minutes=done[0].duration_minutes)
    return replace(outcome, actions=(mark, *outcome.actions))
