"""What rules and templates may name for an event: the one catalogue, and the contexts built from it.

``condition_fields`` and ``template_variables`` are what ``winback rules check`` validates rules and
templates against; ``condition_context`` and ``template_context`` build exactly those names, so the
checker and the handlers can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from operator import is_, itemgetter
from typing import Any, Literal

from handlers.errors import UnknownEventTypeError
from handlers.events import COMPLAINT, DATA_MODELS, LAPSED, MEETING, TIMER, Event
from handlers.plan import Plan
from handlers.rules.model import RuleSettings

# Plan fields rules test as ``plan.<name>`` and templates read as ``plan.<name>``. Nested records
# (history, contacts, suppressions, meetings, check-ins) stay out: rules test their summaries below.
PLAN_FIELDS: tuple[str, ...] = (
    "key", "seq", "stage", "opened_at", "account_name", "owner_id", "contact_id", "contact_name",
    "contact_email", "annual_value", "currency", "do_not_contact", "approach", "lapse_reason",
    "desired_result", "current_beliefs", "target_beliefs", "new_experiences", "feedback",
    "discovery", "apology", "complaints", "checkins_without_movement", "outcome", "closed_at",
    "closing_reason", "missed_checkins",
)
# Summaries of the plan's records, computed here so rules never need to count.
PLAN_SUMMARIES: tuple[str, ...] = (
    "is_open", "checkins_done", "checkins_pending", "last_sentiment", "last_movement",
    "complaint_count", "meeting_count", "timers_pending", "breach_count",
)
PLAN_NAMES: tuple[str, ...] = PLAN_FIELDS + PLAN_SUMMARIES

# Facts about the event the handler works out from the plan before the rules run.
DERIVED: Mapping[str, tuple[str, ...]] = {
    LAPSED: ("plan_reused",),
    COMPLAINT: ("repeat_complaint",),
    MEETING: ("movement", "previous_sentiment", "added_experiences"),
    TIMER: (),
}

# Template names every event has: who and what, resolved from the event and then the plan.
RESOLVED: tuple[str, ...] = (
    "account_id", "account_name", "owner_id", "contact_id", "contact_name", "contact_email",
)
COMMON: tuple[str, ...] = (
    "event", "event_id", "event_type", "event_time", "now", "plan", "settings", "sla_minutes",
)
# Set only while one action's texts are rendered, and which depends on the text: each kind below
# is what ``handlers.realise`` renders a text with, and what the lint checks that text against.
TextKind = Literal["message", "task", "task_per_item", "offer_task", "check_in"]
TEXT_VARIABLES: Mapping[TextKind, frozenset[str]] = {
    "message": frozenset(),  # the apology draft and its subject, a close reason, published fields
    "task": frozenset({"due_at"}),  # any task's subject, description and template
    "task_per_item": frozenset({"due_at", "item"}),  # create_task with for_each: one per item
    "offer_task": frozenset({"due_at", "offer"}),
    "check_in": frozenset({"due_at", "checkin"}),  # due_at is the check-in's start
}
# Where each is set, for the hint when a text uses one its action does not set.
PER_ACTION: Mapping[str, str] = {
    "due_at": "the texts of tasks and check-ins",
    "offer": "the texts of an offer",
    "item": "the texts of a create_task with for_each",
    "checkin": "the texts of schedule_checkins",
}


def full_type(event_type: str) -> str:
    """``customer.lapsed`` or ``crm.customer.lapsed`` → ``crm.customer.lapsed``."""
    if event_type in DATA_MODELS:
        return event_type
    if f"crm.{event_type}" in DATA_MODELS:
        return f"crm.{event_type}"
    raise UnknownEventTypeError(f"unknown event type {event_type!r}")


def _data_fields(event_type: str) -> tuple[str, ...]:
    return tuple(DATA_MODELS[full_type(event_type)].model_fields)


def condition_fields(event_type: str) -> frozenset[str]:
    """Every name a rule's ``when`` may test for ``event_type``."""
    kind = full_type(event_type)
    return frozenset(
        (*_data_fields(kind), *DERIVED[kind], *(f"plan.{name}" for name in PLAN_NAMES))
    )


def template_variables(event_type: str, text: TextKind = "message") -> frozenset[str]:
    """Every top-level variable a ``text`` template may use for ``event_type``.

    The default, ``message``, is what every text has: the event's variables and nothing per action.
    """
    kind = full_type(event_type)
    return frozenset((*_data_fields(kind), *DERIVED[kind], *RESOLVED, *COMMON,
                      *TEXT_VARIABLES[text]))


def per_action(text: TextKind, **values: Any) -> dict[str, Any]:
    """``values``, which must be exactly the per-action variables of a ``text`` template."""
    if values.keys() != TEXT_VARIABLES[text]:  # compared as sets, none built
        # The realiser and the catalogue disagree: a bug, caught by the first test that renders it.
        raise ValueError(f"a {text} text gets {sorted(TEXT_VARIABLES[text])}, got {sorted(values)}")
    return values


def _last_movement(plan: Plan) -> int | None:
    moved = [m.movement for m in plan.meetings if m.movement is not None]
    return moved[-1] if moved else None


# How each summary is worked out, in ``PLAN_SUMMARIES`` order.
_SUMMARIES: Mapping[str, Callable[[Plan], Any]] = {
    "is_open": lambda plan: plan.is_open,
    "checkins_done": lambda plan: plan.checkins_done,
    "checkins_pending": lambda plan: len(plan.pending_checkins),
    "last_sentiment": lambda plan: plan.last_sentiment,
    "last_movement": _last_movement,
    "complaint_count": lambda plan: len(plan.complaints),
    "meeting_count": lambda plan: len(plan.meetings),
    "timers_pending": lambda plan: len(plan.pending_timers),
    "breach_count": lambda plan: len(plan.breaches),
}


def _plan_value(plan: Plan, name: str) -> Any:
    summary = _SUMMARIES.get(name)
    if summary is not None:
        return summary(plan)
    value = getattr(plan, name)
    return list(value) if isinstance(value, tuple) else value


_plan_fields = itemgetter(*PLAN_FIELDS)
# The fields a plan holds as tuples (its lists of beliefs, complaints...): the view's lists.
_LIST_FIELDS: tuple[str, ...] = tuple(
    name for name in PLAN_FIELDS
    if getattr(Plan.model_fields[name].annotation, "__origin__", None) is tuple)


def plan_view(plan: Plan) -> dict[str, Any]:
    """The plan as plain values under ``PLAN_NAMES``: tuples become lists, records summaries."""
    # The validated field values, read at once without pydantic's attribute hook.
    view: dict[str, Any] = dict(zip(PLAN_FIELDS, _plan_fields(plan.__dict__), strict=True))
    for name in _LIST_FIELDS:
        value = view[name]
        if isinstance(value, tuple):
            view[name] = list(value)
    for name, summary in _SUMMARIES.items():
        view[name] = summary(plan)
    return view


# The plan fields each summary reads: a write that leaves them alone leaves the summary as it was.
_SUMMARY_SOURCES: Mapping[str, tuple[str, ...]] = {
    "is_open": ("stage",), "checkins_done": ("checkins",), "checkins_pending": ("checkins",),
    "last_sentiment": ("meetings",), "last_movement": ("meetings",),
    "complaint_count": ("complaints",), "meeting_count": ("meetings",),
    "timers_pending": ("timers",), "breach_count": ("breaches",),
}
# Plan field -> the view's names worked out from it.
_VIEW_NAMES: Mapping[str, tuple[str, ...]] = {
    field: (*((field,) if field in PLAN_FIELDS else ()),
            *(name for name, sources in _SUMMARY_SOURCES.items() if field in sources))
    for field in (*PLAN_FIELDS, *(f for sources in _SUMMARY_SOURCES.values() for f in sources))
}
# The plan fields the template context reads: its ``plan`` view and the resolved names.
_TEMPLATE_FIELDS: tuple[str, ...] = tuple(dict.fromkeys((*_VIEW_NAMES, *RESOLVED, "account_id")))
_RESOLVED_FIELDS: frozenset[str] = frozenset((*RESOLVED, "account_id"))


_template_values = itemgetter(*_TEMPLATE_FIELDS)


def _changed(before: Plan, after: Plan) -> list[str]:
    """The template's plan fields ``after`` holds other values in. A write copies the plan with
    some fields replaced and the rest the very same (immutable) objects, so identity says which;
    a field that is equal but not identical only costs its recomputation."""
    old, new = _template_values(before.__dict__), _template_values(after.__dict__)
    if all(map(is_, old, new)):
        return []
    return [name for name, a, b in zip(_TEMPLATE_FIELDS, old, new, strict=True) if a is not b]


def _view_after(view: Mapping[str, Any], plan: Plan, changed: list[str]) -> dict[str, Any]:
    """``plan_view(plan)``, from the ``view`` of a plan that differs in ``changed`` alone."""
    updated = dict(view)
    for field in changed:
        for name in _VIEW_NAMES.get(field, ()):
            updated[name] = _plan_value(plan, name)
    return updated
def _check_derived(event: Event, derived: Mapping[str, Any]) -> None:
    expected = set(DERIVED[event.type])
    if set(derived) != expected:
        # A handler and the catalogue disagree: a bug, caught by the first unit test that runs it.
        raise ValueError(f"{event.type} derives {sorted(expected)}, got {sorted(derived)}")


def _blank_to_none(value: Any) -> Any:
    # An empty list counts as missing, so ``exists: true`` means "has at least one".
    return None if isinstance(value, list | tuple) and not value else value


_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)


_PLAN_KEYS: tuple[str, ...] = tuple(f"plan.{name}" for name in PLAN_NAMES)
_PLAN_KEY_SET: frozenset[str] = frozenset(_PLAN_KEYS)

class _Conditions(Mapping[str, Any]):
    """One event's condition context against one plan: the event's part is built once per
    event, and each ``plan.<name>`` is read from the plan only when a rule tests it (the rules
    test a few of the ~36, and the plan changes with every write). A ``plan.<name>`` wins over an
    event field of the same name, and the names iterate in the order a merged dict would have."""

    def __init__(self, event_part: Mapping[str, Any], plan: Plan) -> None:
        self._event = event_part
        self.plan = plan
        self._read: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in _PLAN_KEY_SET:
            return self._event[name]
        if name not in self._read:
            self._read[name] = _blank_to_none(_plan_value(self.plan, name[len("plan."):]))
        return self._read[name]

    def get(self, name: str, default: Any = None) -> Any:
        # Mapping.get, without its second call: every field test reads one name this way.
        if name not in _PLAN_KEY_SET:
            return self._event.get(name, default)
        return self[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._event
        yield from (name for name in _PLAN_KEYS if name not in self._event)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class EventContexts:
    """The condition and template contexts of one event, built once per event, not per rule and
    action: the event's parts (one ``model_dump``, derived facts, settings) at construction, the
    plan's parts again only when the run hands in a different plan (after a write), and for the
    conditions only the ``plan.<name>`` a rule tests. What is handed out is shared between rules:
    callers read it and never modify it."""

    def __init__(self, event: Event, settings: RuleSettings, now: datetime,
                 derived: Mapping[str, Any], settings_view: Mapping[str, Any] | None = None
                 ) -> None:
        """``settings_view`` is ``settings.model_dump()`` when the caller holds it already (a
        ``RuleSet`` dumps its settings once)."""
        _check_derived(event, derived)
        data = event.data.model_dump()
        self._data = data
        # _blank_to_none, written out: about fifteen names an event.
        self._condition = {k: None if isinstance(v, list | tuple) and not v else v
                           for k, v in (*data.items(), *derived.items())}
        self._template: dict[str, Any] = {
            **{name: data[name] for name in DATA_MODELS[event.type].model_fields}, **derived}
        self._about = {"event": data, "event_id": event.id, "event_type": event.type,
                       "event_time": event.time, "now": now,
                       "settings": settings.model_dump() if settings_view is None else settings_view,
                       "sla_minutes": settings.sla_minutes}
        self._conditions: _Conditions | None = None
        self._templates: tuple[Plan | None, dict[str, Any]] = (None, {})

    def condition(self, plan: Plan) -> Mapping[str, Any]:
        """Event data fields (extra CRM fields too), derived facts, and ``plan.<name>``."""
        conditions = self._conditions
        if conditions is None or plan is not conditions.plan:
            conditions = self._conditions = _Conditions(self._condition, plan)
        return conditions

    def template(self, plan: Plan) -> dict[str, Any]:
        """Top-level variables every text has: exactly ``template_variables(event.type)``.

        The realiser adds each text's ``per_action`` variables, so none is there where it means
        nothing. After a write, only what the write changed is worked out again (most writes
        change the history and contacts alone, which no template reads): the context handed out
        for the plan before is kept when nothing it shows changed."""
        built_for, template = self._templates
        if plan is built_for:
            return template
        if built_for is None:
            template = {**self._template, **_resolved(self._data, plan), **self._about,
                        "plan": plan_view(plan)}
        else:
            changed = _changed(built_for, plan)
            if changed:
                template = {**template, "plan": _view_after(template["plan"], plan, changed)}
                if not _RESOLVED_FIELDS.isdisjoint(changed):
                    template.update(_resolved(self._data, plan))
        self._templates = (plan, template)
        return template


def condition_context(event: Event, plan: Plan, derived: Mapping[str, Any]) -> dict[str, Any]:
    """One event's condition context, for callers that need it once (see ``EventContexts``)."""
    # Conditions read neither the settings nor the time: any will do.
    return dict(EventContexts(event, RuleSettings(), _ANY_TIME, derived).condition(plan))


def _resolved(data: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    values = {name: data.get(name) or getattr(plan, name, None) for name in RESOLVED}
    # Templates always have a name to show, even for a meeting whose event carries none.
    values["account_name"] = values["account_name"] or plan.account_id
    return values


def template_context(
    event: Event,
    plan: Plan,
    settings: RuleSettings,
    now: datetime,
    derived: Mapping[str, Any],
) -> dict[str, Any]:
    """One event's template context, for callers that need it once (see ``EventContexts``)."""
    return EventContexts(event, settings, now, derived).template(plan)


def anchor_time(event: Event, now: datetime) -> datetime:
    """When the event happened for the customer: due dates, contacts and the budget count from it.

    A complaint's SLA runs from ``logged_at`` and a meeting's follow-ups from ``held_at``, so a
    late or replayed delivery produces the same dates; otherwise the event's time, then ``now``.
    """
    data = event.data
    fields = type(data).model_fields
    for name in ("logged_at", "held_at"):
        # getattr(data, name, None), without pydantic's slow path for a name a model lacks.
        moment = getattr(data, name) if name in fields else (data.model_extra or {}).get(name)
        if isinstance(moment, datetime):
            return moment
    return event.time or now
