"""The realisers: one action spec of a matched rule into CRM actions, one function per action.

Each spec becomes zero or more ``Candidate``s, realised in a ``Scope`` (both in ``handlers.scope``,
with the owner and task building the realisers share); the pipeline puts each through the guards
and, when it may be written, applies its plan update. Keys are derived from the plan key and the spec's
place, never from the clock, so a redelivered event writes the same keys:

- once-per-plan steps: ``{plan}:discovery``, ``{plan}:apology``, ``{plan}:checkin:{slot}``;
- everything else: ``{plan}:{rule_id}[.{n}][:{complaint_id|meeting_id}][:{part}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup

from handlers.actions import (
    Action,
    AddToCampaign,
    CreateCase,
    DraftEmail,
    PublishEvent,
    ScheduleCheckIn,
    SetCheckInStatus,
)
from handlers.context import plan_view
from handlers.deadlines import set_timer
from handlers.errors import RuleError
from handlers.plan import CheckIn, Plan, Timer
from handlers.rules.model import (
    ActionSpec,
    AddToSurveyAction,
    ApologySpec,
    ClosePlanAction,
    CreateTaskAction,
    DraftApologyAction,
    EscalateAction,
    OfferAction,
    OpenCaseAction,
    PublishEventAction,
    ScheduleCheckInsAction,
    TaskSpec,
)
from handlers.scope import Candidate, Scope, build_task, resolve_owner, task_candidate

# ``handlers.pipeline`` takes the candidate and scope types from here, with ``realise``.
__all__ = ["Candidate", "Scope", "realise"]


def create_task(scope: Scope, spec: TaskSpec) -> list[Candidate]:
    if spec.kind == "discovery":
        return [task_candidate(scope, spec, f"{scope.plan.key}:discovery")]
    if spec.for_each is None:
        return [task_candidate(scope, spec, scope.key())]
    items = scope.values.get(spec.for_each)
    if not isinstance(items, list):
        raise RuleError(f"rule {scope.rule_id}: for_each {spec.for_each!r} is not a list")
    return [task_candidate(scope, spec, scope.key(str(n)), "task_per_item", item=item)
            for n, item in enumerate(items, start=1)]


def _plain_text(scope: Scope, html_template: str, html: str) -> str:
    # A sibling ``.txt.j2`` gives a hand-written text body; else the HTML without its tags.
    text_template = html_template.removesuffix(".html.j2") + ".txt.j2"
    if text_template != html_template and scope.rules.templates.has(text_template):
        return scope.file(text_template)
    return Markup(html).striptags()  # noqa: S704 - html is our own autoescaped render


def _apology_tasks(spec: ApologySpec) -> tuple[TaskSpec, TaskSpec]:
    """The review task a draft comes with, and the note written instead of a second apology."""
    review = TaskSpec(kind="review", subject=spec.review_subject,
                      description=spec.review_description, owner=spec.owner,
                      due_in=spec.review_due_in, priority="high")
    note = TaskSpec(kind="note", subject=spec.acknowledgement_subject,
                    description=spec.acknowledgement_description, owner=spec.owner,
                    due_in=spec.review_due_in)
    return review, note


def draft_apology(scope: Scope, action: DraftApologyAction) -> list[Candidate]:
    spec = action.draft_apology
    key = f"{scope.plan.key}:apology"
    owner = resolve_owner(spec.owner, scope)
    html = scope.file(spec.template)
    draft = DraftEmail(
        key=key, plan_key=scope.plan.key, account_id=scope.plan.account_id, kind="apology",
        subject=scope.text(spec.subject), body_html=html,
        body_text=_plain_text(scope, spec.template, html), owner_id=owner.owner_id,
        assign=owner.relation,
        provenance=scope.provenance, to_address=scope.values.get("contact_email"),
        contact_id=scope.values.get("contact_id"),
    )
    review, note = scope.rules.made_once(spec, lambda: _apology_tasks(spec))
    fallback = Candidate("note", scope.key("no-second-apology"),
                         (build_task(scope, note, scope.key("no-second-apology")),))
    return [Candidate(
        "apology", key, (draft, build_task(scope, review, f"{key}:review")),
        f"apology drafted for review ({key})",
        update={"apology": "drafted", "apology_key": key}, fallback=fallback,
    )]


def _first_meeting_at(plan: Plan, fallback: datetime) -> datetime:
    return plan.meetings[0].held_at if plan.meetings else fallback


def schedule_checkins(scope: Scope, action: ScheduleCheckInsAction) -> list[Candidate]:
    """The next free slot on the cadence, counted from the first meeting, that is still ahead."""
    spec, plan = action.schedule_checkins, scope.plan
    if plan.pending_checkins:
        return []  # the next check-in is already in the calendar
    cadence = spec.cadence_days
    days = getattr(scope.rules.settings, cadence.setting) if not isinstance(cadence, list) else cadence
    start = _first_meeting_at(plan, scope.anchor)
    used = {c.slot for c in plan.checkins}
    for slot, offset in enumerate(days, start=1):
        start_at = start + timedelta(days=offset)
        if slot not in used and start_at > scope.anchor:
            return [_checkin(scope, action, slot, start_at)]
    return []  # the cadence is used up; the move-on rule or a person decides what next


def _checkin(scope: Scope, action: ScheduleCheckInsAction, slot: int, start_at: datetime
             ) -> Candidate:
    spec = action.schedule_checkins
    key = f"{scope.plan.key}:checkin:{slot}"
    values = scope.values_for("check_in", checkin={"slot": slot, "start_at": start_at},
                              due_at=start_at)
    templates = scope.rules.templates
    owner = resolve_owner(spec.owner, scope)
    event = ScheduleCheckIn(
        key=key, plan_key=scope.plan.key, account_id=scope.plan.account_id, slot=slot,
        start_at=start_at, duration_minutes=spec.duration_minutes,
        subject=templates.render_string(spec.subject, values),
        description=templates.render_string(spec.description or "", values),
        owner_id=owner.owner_id, assign=owner.relation, provenance=scope.provenance,
        contact_id=scope.values.get("contact_id"),
    )
    record = CheckIn(slot=slot, key=key, start_at=start_at,
                     duration_minutes=spec.duration_minutes)
    actions: tuple[Action, ...] = (event,)
    timers: tuple[Timer, ...] = ()
    if spec.unless_held is not None:
        grace = spec.unless_held.within.to_timedelta(scope.rules.settings.sla_minutes)
        timer, publish = set_timer(scope, "unless_held", key, start_at + grace)
        actions, timers = (event, publish), (timer,)
    return Candidate(
        "check_in", key, actions, f"check-in {slot} scheduled for {start_at.isoformat()}",
        update={"checkins": (*scope.plan.checkins, record)}, timers=timers,
    )


def escalate(scope: Scope, action: EscalateAction) -> list[Candidate]:
    spec = action.escalate
    task = scope.rules.made_once(spec, lambda: TaskSpec(
        kind="escalation", subject=spec.subject, description=spec.description, owner=spec.to,
        due_in=spec.due_in, priority=spec.priority))
    return [task_candidate(scope, task, scope.key())]


def add_to_survey(scope: Scope, action: AddToSurveyAction) -> list[Candidate]:
    """The survey is how a low-value lapse is asked why it left: it counts as the discovery."""
    spec = action.add_to_survey
    key = scope.key()
    task = scope.rules.made_once(spec, lambda: TaskSpec(
        kind="survey", subject=spec.subject, description=spec.description,
        template=spec.template, owner=spec.owner, due_in=spec.due_in))
    actions: list[Action] = [build_task(scope, task, key)]
    contact_id = scope.values.get("contact_id")
    # A campaign member is a person: with no contact on the lapse, the survey task alone asks
    # the queue to find one, rather than a membership the CRM would refuse.
    if spec.campaign_id and contact_id:
        actions.append(AddToCampaign(
            key=f"{key}:campaign", plan_key=scope.plan.key, account_id=scope.plan.account_id,
            campaign_id=spec.campaign_id, contact_id=contact_id, provenance=scope.provenance,
        ))
    return [Candidate("survey", key, tuple(actions), "asked why they left by survey",
                      update={"discovery": "open"}, decision={"approach": "survey"})]


def offer(scope: Scope, action: OfferAction) -> list[Candidate]:
    spec = action.offer
    chosen = scope.rules.settings.offers.get(spec.offer)
    if chosen is None:
        raise RuleError(f"rule {scope.rule_id}: no offer {spec.offer!r} in settings.offers")
    task, offered = scope.rules.made_once(spec, lambda: (TaskSpec(
        kind="offer", subject=spec.subject, template=spec.template,
        description=None if spec.template else "{{ offer.description }}", owner=spec.owner,
        due_in=spec.due_in), {"name": spec.offer, **chosen.model_dump()}))
    offer_task = build_task(scope, task, scope.key(), "offer_task", offer=offered)
    return [Candidate("offer", scope.key(), (offer_task,), f"offered {spec.offer}")]


def open_case(scope: Scope, action: OpenCaseAction) -> list[Candidate]:
    """A Case for a team; internal work (never suppressed), so a key per rule and complaint."""
    spec = action.open_case
    key = scope.key()
    owner = resolve_owner(spec.owner, scope)
    description = scope.file(spec.template) if spec.template else scope.text(spec.description or "")
    case = CreateCase(
        key=key, plan_key=scope.plan.key, account_id=scope.plan.account_id, kind=spec.kind,
        subject=scope.text(spec.subject), description=description, owner_id=owner.owner_id,
        priority=spec.priority, provenance=scope.provenance,
        contact_id=scope.values.get("contact_id"), assign=owner.relation,
    )
    return [Candidate("case", key, (case,), f"case opened: {key}")]


def close_plan(scope: Scope, action: ClosePlanAction) -> list[Candidate]:
    """Won or lost: pending check-ins are cancelled, and a follow-up task when the rule has one."""
    spec, plan = action.close_plan, scope.plan
    if not plan.is_open:
        return []
    reason = scope.text(spec.reason)
    pending = plan.pending_checkins
    actions: tuple[Action, ...] = ()
    if pending:
        actions = (SetCheckInStatus(plan.key, plan.account_id, tuple(c.key for c in pending),
                                    "cancelled", f"plan closed as {spec.outcome}: {reason}",
                                    scope.provenance),)
    checkins = tuple(c.model_copy(update={"status": "cancelled"}) if c.status == "pending" else c
                     for c in plan.checkins)
    # Pending timers will find nothing to do when they come back: the plan says so.
    timers = tuple(t.model_copy(update={"status": "cancelled"}) if t.status == "pending" else t
                   for t in plan.timers)
    cancelled = f"; cancelled {', '.join(c.key for c in pending)}" if pending else ""
    closing = Candidate(
        "close", f"{plan.key}:close", actions, f"closed as {spec.outcome}: {reason}{cancelled}",
        update={"stage": spec.outcome, "outcome": spec.outcome, "closed_at": scope.anchor,
                "closing_reason": reason, "checkins": checkins, "timers": timers},
    )
    if spec.follow_up is None:
        return [closing]
    # The follow-up is written about the closed plan (its outcome and reason), not the open one.
    closed = plan_view(plan.model_copy(update=closing.update))
    key = f"{plan.key}:follow-up:{spec.outcome}"
    about_closed = replace(scope, values={**scope.values, "plan": closed})
    return [closing, task_candidate(about_closed, spec.follow_up, key)]


def publish_event(scope: Scope, action: PublishEventAction) -> list[Candidate]:
    spec = action.publish_event
    key = scope.key(spec.type)
    payload: dict[str, Any] = {
        "type": spec.type, "account_id": scope.plan.account_id, "plan_key": scope.plan.key,
        "event_id": scope.event.id, "rules_version": scope.rules.version,
    }
    payload.update({name: scope.text(source) for name, source in spec.fields.items()})
    return [Candidate("publish", key, (PublishEvent(key, spec.type, payload, scope.provenance),))]


def _create_task(scope: Scope, action: CreateTaskAction) -> list[Candidate]:
    return create_task(scope, action.create_task)


_REALISERS: Mapping[type[Any], Callable[[Scope, Any], list[Candidate]]] = {
    CreateTaskAction: _create_task,
    DraftApologyAction: draft_apology,
    ScheduleCheckInsAction: schedule_checkins,
    EscalateAction: escalate,
    AddToSurveyAction: add_to_survey,
    OfferAction: offer,
    OpenCaseAction: open_case,
    ClosePlanAction: close_plan,
    PublishEventAction: publish_event,
}


def realise(spec: ActionSpec, scope: Scope) -> list[Candidate]:
    """The candidates one action spec produces against the plan as it is now."""
    return _REALISERS[type(spec)](scope, spec)
