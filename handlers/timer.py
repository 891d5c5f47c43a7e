"""``winback.timer.due``: a deadline has come; look at what the CRM says, then act or do nothing.

The worker fills in ``observed`` (the watched task's or check-in's state in the CRM) just before
this handler runs. Nothing happens when the plan has closed, the timer is no longer pending (it
already fired, or the plan was closed and cancelled it), or the step was done in time. Otherwise:

- ``unless_done`` (an acknowledgement not closed by its deadline): a breach on the plan, the
  deadline's ``then`` (an escalation), and, when ``again`` says so, a second-round timer;
- ``unless_held`` (a check-in not held within its grace): a missed check-in on the plan, the
  ``then`` (a nudge for the owner), and, after ``close_after`` misses, the plan closed as lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial

from handlers.context import condition_context, template_context
from handlers.deadlines import set_timer
from handlers.errors import InvalidEventError
from handlers.events import TIMER, Event, StepState, TimerData, parse_event
from handlers.outcome import Outcome, RuleTrace, Signal
from handlers.pipeline import METHOD, finish, offer_all, record
from handlers.plan import Breach, Plan
from handlers.realise import realise
from handlers.rules.conditions import evaluate
from handlers.rules.model import (
    ClosePlanAction,
    ClosePlanSpec,
    CreateTaskAction,
    ScheduleCheckInsAction,
    SettingRef,
)
from handlers.rules.model_actions import DeadlineAction, UnlessDone, UnlessHeld
from handlers.rules.ruleset import RuleSet
from handlers.scope import Candidate, Scope

# States of the watched record that mean the promise was kept (or there is nothing to keep).
KEPT: frozenset[StepState] = frozenset({"done", "cancelled", "missing"})


def timer_data(event: Event) -> TimerData:
    if not isinstance(event.data, TimerData):
        raise InvalidEventError(f"{event.type} event {event.id} does not carry timer data")
    return event.data


def not_due(event: Event, now: datetime) -> datetime | None:
    """The due time of a timer that arrived early (it goes back to wait), else None."""
    if isinstance(event.data, TimerData) and event.data.due_at > now:
        return event.data.due_at
    return None


def watched(event: Event) -> tuple[str, str] | None:
    """(record key, account id) the worker reads from the CRM before handling, for a timer."""
    data = event.data
    return (data.step_key, data.account_id) if isinstance(data, TimerData) else None


def with_observed(event: Event, state: StepState) -> Event:
    data = timer_data(event)
    return event.model_copy(update={"data": data.model_copy(update={"observed": state})})


def _skip(plan: Plan | None, why: str, outcome: str = "skipped") -> Outcome:
    return replace(finish([], plan, plan, [RuleTrace(METHOD, False, why)], []),
                   signals=(Signal("timer_fired", outcome),))


def _mark(plan: Plan, event: Event, rules: RuleSet, now: datetime, status: str, what: str,
          **update: object) -> Plan:
    data = timer_data(event)
    timers = tuple(t.model_copy(update={"status": status}) if t.key == data.timer_key else t
                   for t in plan.timers)
    return record(plan, event, rules, now, data.rule_id, what, timers=timers, **update)


def _deadline(rules: RuleSet, data: TimerData) -> UnlessDone | UnlessHeld | None:
    """The deadline block as the rules in force say now: the rules decide at firing time."""
    rule = next((r for r in rules.file.rules if r.id == data.rule_id), None)
    if rule is None or data.spec_index >= len(rule.then):
        return None
    spec = rule.then[data.spec_index]
    if data.kind == "unless_done" and isinstance(spec, CreateTaskAction):
        return spec.create_task.unless_done
    if data.kind == "unless_held" and isinstance(spec, ScheduleCheckInsAction):
        return spec.schedule_checkins.unless_held
    return None


def _scope(origin: Event, plan: Plan, rules: RuleSet, now: datetime, event: Event, index: int | None
           ) -> Scope:
    data = timer_data(event)
    values = template_context(origin, plan, rules.settings, now, data.derived)
    label = f"late{data.round}" if data.kind == "unless_done" else "missed"
    return Scope(origin, plan, rules, data.rule_id, index, values, data.due_at,
                 acting_event_id=event.id, label=label)


def _then_steps(origin: Event, then: list[DeadlineAction], rules: RuleSet, now: datetime,
                event: Event) -> list[Callable[[Plan], list[Candidate]]]:
    several = len(then) > 1

    # Recorded on the plan's history, so its timeline says what the slip led to.
    written = "nudge" if timer_data(event).kind == "unless_held" else None

    def step(spec: DeadlineAction, index: int | None, plan: Plan) -> list[Candidate]:
        return [replace(c, change=c.change or f"{written or c.kind} written: {c.key}")
                for c in realise(spec, _scope(origin, plan, rules, now, event, index))]

    return [partial(step, spec, n if several else None) for n, spec in enumerate(then, start=1)]


def _again(origin: Event, spec: UnlessDone, rules: RuleSet, now: datetime, event: Event,
           plan: Plan) -> list[Candidate]:
    data = timer_data(event)
    if data.round > 1 or spec.again is None:
        return []
    if spec.again.when is not None:
        context = condition_context(origin, plan, data.derived)
        if not evaluate(spec.again.when, context, rules.settings).holds:
            return []
    due = data.due_at + spec.again.after.to_timedelta(rules.settings.sla_minutes)
    scope = _scope(origin, plan, rules, now, event, data.spec_index + 1)
    timer, publish = set_timer(scope, "unless_done", data.step_key, due, round_=2)
    return [Candidate("timer", timer.key, (publish,), f"second round due {due.isoformat()}",
                      timers=(timer,))]


def _close_after(origin: Event, spec: UnlessHeld, rules: RuleSet, now: datetime, event: Event,
                 plan: Plan) -> list[Candidate]:
    limit = spec.close_after
    if isinstance(limit, SettingRef):
        limit = int(getattr(rules.settings, limit.setting))
    if limit is None or plan.missed_checkins < limit:
        return []
    close = ClosePlanAction(close_plan=ClosePlanSpec(outcome="lost", reason=spec.close_reason))
    return realise(close, _scope(origin, plan, rules, now, event, None))


def _act(event: Event, plan: Plan, rules: RuleSet, now: datetime, spec: UnlessDone | UnlessHeld
         ) -> Outcome:
    data = timer_data(event)
    origin = parse_event(json.dumps(data.origin))
    breach = Breach(at=data.due_at, timer_key=data.timer_key, step_key=data.step_key,
                    kind="sla" if data.kind == "unless_done" else "checkin",
                    severity=data.severity, round=data.round)
    missed = plan.missed_checkins + (1 if data.kind == "unless_held" else 0)
    what = (f"SLA breach ({data.severity or 'no'} severity, round {data.round}): {data.step_key} "
            f"not done by {data.due_at.isoformat()}"
            if data.kind == "unless_done" else
            f"missed check-in ({missed} so far): {data.step_key} not held by {data.due_at.isoformat()}")
    marked = _mark(plan, event, rules, now, "acted", what, breaches=(*plan.breaches, breach),
                   missed_checkins=missed)
    steps = _then_steps(origin, spec.then, rules, now, event)
    if isinstance(spec, UnlessDone):
        steps.append(partial(_again, origin, spec, rules, now, event))
    else:
        steps.append(partial(_close_after, origin, spec, rules, now, event))
    actions, after, suppressed = offer_all(event, marked, rules, now, data.rule_id, steps,
                                           data.due_at)
    outcome = finish(actions, plan, after, [RuleTrace(data.rule_id, True, what)], suppressed)
    signals = [Signal("timer_fired", "acted")]
    if data.kind == "unless_done":
        signals.append(Signal("sla_breach", data.severity or "none"))
    return replace(outcome, signals=tuple(signals))


def handle_timer(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Act on a deadline that passed with its step not done; otherwise record why not."""
    data = timer_data(event)
    # On a closed plan only a timer that is still owed acts (``Plan.will_act``).
    owed = plan is not None and any(t.key == data.timer_key and plan.will_act(t) for t in plan.timers)
    if plan is None or plan.key != data.plan_key or not (plan.is_open or owed):
        return _skip(plan, f"plan {data.plan_key} is closed or gone: timer {data.timer_key} does nothing")
    timer = next((t for t in plan.timers if t.key == data.timer_key), None)
    if timer is None or timer.status != "pending":
        status = timer.status if timer else "unknown"
        return _skip(plan, f"timer {data.timer_key} is {status} on plan {plan.key}")
    checkin = next((c for c in plan.checkins if c.key == data.step_key), None)
    if data.observed in KEPT or (checkin is not None and checkin.status != "pending"):
        what = f"{data.step_key} is {data.observed or (checkin and checkin.status)}: promise kept"
        kept = _mark(plan, event, rules, now, "met", what)
        return replace(finish([], plan, kept, [RuleTrace(data.rule_id, False, what)], []),
                       signals=(Signal("timer_fired", "met"),))
    spec = _deadline(rules, data)
    if spec is None:
        what = f"rule {data.rule_id} no longer sets this deadline: timer {data.timer_key} dropped"
        dropped = _mark(plan, event, rules, now, "cancelled", what)
        return replace(finish([], plan, dropped, [RuleTrace(data.rule_id, False, what)], []),
                       signals=(Signal("timer_fired", "skipped"),))
    return _act(event, plan, rules, now, spec)


__all__ = ["TIMER", "handle_timer", "not_due", "watched", "with_observed"]
