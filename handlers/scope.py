"""What a realiser works with: the ``Scope`` one action spec is realised in, and its ``Candidate``s.

Also the pieces several realisers share: resolving an owner, and turning a ``TaskSpec`` into a
``CreateTask`` (and into a candidate, with the plan decision a task kind implies).
``handlers.realise`` holds the realisers themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.actions import Action, CreateTask, Provenance
from handlers.context import TextKind, per_action
from handlers.deadlines import set_timer
from handlers.errors import RuleError
from handlers.events import ComplaintData, Event, MeetingData
from handlers.owners import ACCOUNT_OWNER, ACCOUNT_OWNER_MANAGER, Assignee
from handlers.plan import Plan, Timer
from handlers.rules.model import Duration, Owner, TaskSpec
from handlers.rules.ruleset import RuleSet


@dataclass(frozen=True)
class Candidate:
    """Actions one spec wants written, with the plan update that goes with them."""

    kind: str
    key: str
    actions: tuple[Action, ...]
    change: str | None = None  # recorded on the plan's history when written
    update: Mapping[str, Any] = field(default_factory=dict)  # plan fields, when written
    decision: Mapping[str, Any] = field(default_factory=dict)  # plan fields, written or not
    fallback: Candidate | None = None  # written instead when blocked as once-per-plan
    timers: tuple[Timer, ...] = ()  # added to the plan's timers, when written


@dataclass(frozen=True)
class Scope:
    """Everything a spec needs to become actions."""

    event: Event
    plan: Plan
    rules: RuleSet
    rule_id: str
    index: int | None  # the spec's place in ``then`` when the rule has several
    values: Mapping[str, Any]  # the template context
    anchor: datetime  # when the event happened for the customer
    # A timer acting on ``event`` (its origin): the timer's event id, and a key part, e.g. late1.
    acting_event_id: str | None = None
    label: str | None = None

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.acting_event_id or self.event.id, self.rule_id, self.rules.version)

    def key(self, *parts: str) -> str:
        data = self.event.data
        scope = data.complaint_id if isinstance(data, ComplaintData) else (
            data.meeting_id if isinstance(data, MeetingData) else None)
        spec = self.rule_id if self.index is None else f"{self.rule_id}.{self.index}"
        label = [self.label] if self.label else []
        return ":".join([self.plan.key, spec, *([scope] if scope else []), *label, *parts])

    def values_for(self, kind: TextKind = "message", **extra: Any) -> Mapping[str, Any]:
        """The context a ``kind`` text renders with: built once for all of an action's texts."""
        per = per_action(kind, **extra)
        return {**self.values, **per} if per else self.values

    def text(self, source: str, kind: TextKind = "message", **extra: Any) -> str:
        return self.rules.templates.render_string(source, self.values_for(kind, **extra))

    def file(self, name: str, kind: TextKind = "message", **extra: Any) -> str:
        return self.rules.templates.render_file(name, self.values_for(kind, **extra))

    def due(self, duration: Duration) -> datetime:
        # ``duration`` is one of the rule set's own specs, and the SLA its setting: worked out
        # once per rule set, not per task.
        return self.anchor + self.rules.timedelta_of(duration)


def _role(name: str, scope: Scope) -> Assignee:
    """The owner ``settings.owners[name]`` names, as far as the event and the plan know it."""
    owners = scope.rules.settings.owners
    if name not in owners:
        raise RuleError(f"rule {scope.rule_id}: no owner {name!r} in settings.owners")
    value = owners[name]
    known = _account_owner(scope)
    if value == ACCOUNT_OWNER:
        return Assignee(known) if known else Assignee(None, "account_owner")
    if value == ACCOUNT_OWNER_MANAGER:
        return Assignee(known, "account_owner_manager")
    return Assignee(scope.rules.owner_ids.get(name, value))


def _account_owner(scope: Scope) -> str | None:
    value = scope.values.get("owner_id")
    return value if isinstance(value, str) and value else None


def resolve_owner(owner: Owner, scope: Scope) -> Assignee:
    """``{user}`` as resolved at start-up, ``{queue}`` from settings.owners, ``{field}`` from the
    event or plan."""
    if owner.user:
        return Assignee(scope.rules.owner_ids.get(f"user:{owner.user}", owner.user))
    if owner.queue:
        return _role(owner.queue, scope)
    value = scope.values.get(owner.field or "")
    if isinstance(value, str) and value:
        return Assignee(value)
    return _role(owner.fallback or "default", scope)


def build_task(scope: Scope, spec: TaskSpec, key: str, kind: TextKind = "task", **extra: Any
               ) -> CreateTask:
    """The one task ``spec`` describes, under ``key``; its texts are rendered as ``kind``."""
    due_at = scope.due(spec.due_in)
    values = scope.values_for(kind, due_at=due_at, **extra)
    templates = scope.rules.templates
    if spec.template:
        description = templates.render_file(spec.template, values)
    else:
        description = templates.render_string(spec.description or "", values)
    owner = resolve_owner(spec.owner, scope)
    return CreateTask(
        key=key, plan_key=scope.plan.key, account_id=scope.plan.account_id, kind=spec.kind,
        subject=templates.render_string(spec.subject, values), description=description,
        owner_id=owner.owner_id, assign=owner.relation, due_at=due_at, priority=spec.priority,
        provenance=scope.provenance, contact_id=scope.values.get("contact_id"),
        reminder_at=due_at if spec.reminder else None,
    )


def task_candidate(scope: Scope, spec: TaskSpec, key: str, kind: TextKind = "task",
                   **extra: Any) -> Candidate:
    """One task as a candidate: a discovery opens the discovery, outreach is an individual approach;
    a task with ``unless_done`` sets its timer too."""
    task = build_task(scope, spec, key, kind, **extra)
    actions: tuple[Action, ...] = (task,)
    timers: tuple[Timer, ...] = ()
    if spec.unless_done is not None:
        timer, publish = set_timer(scope, "unless_done", key, scope.due(spec.unless_done.within))
        actions, timers = (task, publish), (timer,)
    if spec.kind == "discovery":
        return Candidate("discovery", key, actions, "asked why they left: discovery open",
                         update={"discovery": "open"}, decision={"approach": "individual"},
                         timers=timers)
    decision = {"approach": "individual"} if spec.kind == "outreach" else {}
    return Candidate(spec.kind, key, actions, decision=decision, timers=timers)
