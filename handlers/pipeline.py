"""The generic part of every handler: run the event type's rules in order, guard, apply, trace.

A handler first makes the method's built-in change to the plan (open it, record a complaint or a
meeting), then calls ``run_rules``. Each matched rule's action specs are realised against the plan
as it stands at that moment, so a rule sees what earlier rules did (a plan closed by one rule
gets no outreach from the next). Every change to the plan is written to its history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.actions import OUTREACH_KINDS, Action, SavePlan
from handlers.context import EventContexts, anchor_time
from handlers.doubts import doubtful_fields
from handlers.errors import RuleError
from handlers.events import Event
from handlers.guards import Proposed, check, cooling_off
from handlers.outcome import Outcome, RuleTrace
from handlers.plan import Change, Contact, Plan, Suppression, amended, plan_key
from handlers.realise import Candidate, Scope, realise
from handlers.rules.model import Rule
from handlers.rules.ruleset import RuleSet

# The rule id recorded for changes the method itself makes, before any admin rule runs.
METHOD = "method"


def happened_at(event: Event, now: datetime) -> datetime:
    """When ``event`` happened, which is when its timeline lines say: the CloudEvent's ``time``;
    for an event without one, a timer's due time or the complaint's or meeting's own time, and
    only then ``now``. A delivery that comes late or is replayed keeps the times it had."""
    if event.time is not None:
        return event.time
    due = getattr(event.data, "due_at", None)
    return due if isinstance(due, datetime) else anchor_time(event, now)


def record(plan: Plan, event: Event, rules: RuleSet, now: datetime, rule_id: str, what: str,
           **update: Any) -> Plan:
    """``plan`` with ``update`` applied and one history entry saying what changed and why, at the
    time the event happened (``happened_at``), not when the worker got to it."""
    change = Change(at=happened_at(event, now), event_id=event.id, rules_version=rules.version,
                    rule_id=rule_id, what=what)
    return amended(plan, {**update, "history": (*plan.history, change)})


def let_go(plan: Plan | None, event: Event, rules: RuleSet, now: datetime
           ) -> tuple[Plan, Suppression] | None:
    """Within the cool-off after ``plan`` closed as lost: the lost plan, with the new plan this
    event would have opened recorded as suppressed, and that suppression; else ``None``."""
    if plan is None or plan.is_open:
        return None
    blocked = cooling_off(plan, anchor_time(event, now), rules.settings.move_on_cooloff_days)
    if blocked is None:
        return None
    entry = Suppression(at=happened_at(event, now), event_id=event.id, rule_id=METHOD,
                        action="plan", key=plan_key(plan.account_id, plan.seq + 1),
                        reason=blocked.reason, code=blocked.code)
    kept = record(plan, event, rules, now, METHOD, f"suppressed plan {entry.key}: {blocked.reason}",
                  suppressed=(*plan.suppressed, entry))
    return kept, entry


@dataclass
class _Run:
    """The state of one event's run through its rules; local to ``run_rules``."""

    event: Event
    rules: RuleSet
    now: datetime
    derived: Mapping[str, Any]
    plan: Plan
    contexts: EventContexts
    at: datetime  # the event's anchor time: when due dates count from
    actions: list[Action] = field(default_factory=list)
    trace: list[RuleTrace] = field(default_factory=list)
    suppressed: list[Suppression] = field(default_factory=list)

    def scope(self, rule: Rule, index: int | None) -> Scope:
        return Scope(self.event, self.plan, self.rules, rule.id, index,
                     self.contexts.template(self.plan), self.at)

    def write(self, rule_id: str, candidate: Candidate, at: datetime) -> None:
        self.actions.extend(candidate.actions)
        update = dict(candidate.update)
        if candidate.kind in OUTREACH_KINDS:
            update["contacts"] = (*self.plan.contacts, Contact(at=at, kind=candidate.kind,
                                                                key=candidate.key))
        if candidate.timers:
            update["timers"] = (*update.get("timers", self.plan.timers), *candidate.timers)
        if update or candidate.change is not None:
            what = candidate.change or f"{candidate.kind} written: {candidate.key}"
            self.plan = record(self.plan, self.event, self.rules, self.now, rule_id, what,
                               **update)

    def suppress(self, rule_id: str, candidate: Candidate, reason: str, code: str | None = None
                 ) -> None:
        entry = Suppression(at=happened_at(self.event, self.now), event_id=self.event.id,
                            rule_id=rule_id, action=candidate.kind, key=candidate.key, reason=reason,
                            code=code)
        self.suppressed.append(entry)
        self.plan = record(self.plan, self.event, self.rules, self.now, rule_id,
                           f"suppressed {candidate.kind} {candidate.key}: {reason}",
                           suppressed=(*self.plan.suppressed, entry))

    def decide(self, rule_id: str, candidate: Candidate) -> None:
        if not candidate.decision:
            return  # most candidates decide nothing
        changed = {k: v for k, v in candidate.decision.items() if getattr(self.plan, k) != v}
        if changed:
            what = ", ".join(f"{k}: {v}" for k, v in changed.items())
            self.plan = record(self.plan, self.event, self.rules, self.now, rule_id, what,
                               **changed)

    def offer(self, rule_id: str, candidate: Candidate, at: datetime) -> None:
        """Guard one candidate, then write it, its fallback, or nothing."""
        self.decide(rule_id, candidate)
        # Only outreach is guarded (``check`` says so too): internal work needs no Proposed.
        blocked = check(Proposed(candidate.kind, candidate.key, at), self.plan,
                        self.rules.settings) if candidate.kind in OUTREACH_KINDS else None
        if blocked is None:
            self.write(rule_id, candidate, at)
            return
        self.suppress(rule_id, candidate, blocked.reason, blocked.code)
        if blocked.code == "once_per_plan" and candidate.fallback is not None:
            self.offer(rule_id, candidate.fallback, at)


def _verdict(run: _Run, rule: Rule) -> RuleTrace:
    context = run.contexts.condition(run.plan)
    rules = run.rules
    try:
        verdict = rules.evaluator(rule)(context, rules.settings)
    except KeyError as exc:  # an unknown ``{setting: name}``: the rules cannot decide
        raise RuleError(f"rule {rule.id}: {exc.args[0]}") from exc
    return RuleTrace(rule.id, verdict.holds, verdict.reason, stopped=verdict.holds and rule.stop)


def _apply_rule(run: _Run, rule: Rule) -> None:
    at = run.at
    several = len(rule.then) > 1
    for index, spec in enumerate(rule.then, start=1):
        for candidate in realise(spec, run.scope(rule, index if several else None)):
            run.offer(rule.id, candidate, at)


def offer_all(event: Event, plan: Plan, rules: RuleSet, now: datetime, rule_id: str,
              steps: Iterable[Callable[[Plan], list[Candidate]]], at: datetime
              ) -> tuple[list[Action], Plan, list[Suppression]]:
    """Offer each step's candidates, each step realised on the plan the previous ones left: how a
    timer runs a deadline's ``then`` outside the rules' ``when`` (``handlers.timer``)."""
    contexts = EventContexts(event, rules.settings, now, {}, rules.settings_view)
    run = _Run(event, rules, now, {}, plan, contexts, at)
    for step in steps:
        for candidate in step(run.plan):
            run.offer(rule_id, candidate, at)
    return run.actions, run.plan, run.suppressed


def run_rules(event: Event, before: Plan | None, plan: Plan, rules: RuleSet, now: datetime,
              derived: Mapping[str, Any], suppressed: Iterable[Suppression] = ()) -> Outcome:
    """Evaluate ``event``'s rules in file order against ``plan``; ``before`` is the stored plan.
    ``suppressed`` are what the handler already held back (a new plan, in the cool-off)."""
    for note in doubtful_fields(event.data):
        plan = record(plan, event, rules, now, METHOD, note)
    contexts = EventContexts(event, rules.settings, now, derived, rules.settings_view)
    run = _Run(event, rules, now, derived, plan, contexts, anchor_time(event, now),
               suppressed=list(suppressed))
    stopped_by: str | None = None
    for rule in rules.rules_for(event.type):
        if stopped_by is not None:
            run.trace.append(RuleTrace(rule.id, False, f"skipped: rule {stopped_by} stopped",
                                       skipped=True))
            continue
        trace = _verdict(run, rule)
        run.trace.append(trace)
        if trace.matched:
            _apply_rule(run, rule)
            stopped_by = rule.id if rule.stop else None
    return finish(run.actions, before, run.plan, run.trace, run.suppressed)


def finish(actions: list[Action], before: Plan | None, plan: Plan | None,
           trace: list[RuleTrace], suppressed: list[Suppression]) -> Outcome:
    """The outcome, ending with ``SavePlan`` whenever the plan changed or anything is written,
    one revision on. Claiming the revision with every write is what keeps two workers from both
    writing the same record for one account at once: the second claim is refused, whole."""
    if plan is not None and (plan != before or actions):
        plan = amended(plan, {"revision": plan.revision + 1})
        known = len(before.suppressed) if before is not None and before.key == plan.key else 0
        actions = [*actions, SavePlan(plan, suppressed_from=known)]
    return Outcome(tuple(actions), plan, tuple(trace), tuple(suppressed))
