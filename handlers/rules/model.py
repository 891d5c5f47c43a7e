"""The rules file as typed, frozen models: settings, rules, conditions and actions.

The JSON Schema an editor uses for completion is generated from these models
(``winback rules schema``), so this module is the one definition of the file's shape.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.events import EVENT_TYPES

SHORT_TYPES = {t.removeprefix("crm."): t for t in EVENT_TYPES}
EventType = Literal["customer.lapsed", "complaint.logged", "meeting.held"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettingRef(_Strict):
    """A value taken from ``settings`` so a threshold is written once: ``{setting: name}``."""

    setting: str


Scalar = str | int | float | bool
Value = Scalar | SettingRef


class Duration(_Strict):
    """``{days: 3}``, ``{hours: 4}``, ``{minutes: 20}``; parts add up. ``sla: true`` uses the SLA."""

    days: int = Field(0, ge=0, le=3650)
    hours: int = Field(0, ge=0, le=10_000)
    minutes: int = Field(0, ge=0, le=100_000)
    sla: bool = False

    def to_timedelta(self, sla_minutes: int) -> timedelta:
        extra = timedelta(minutes=sla_minutes) if self.sla else timedelta()
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes) + extra


class Owner(_Strict):
    """Who gets the work: ``{field: owner_id}``, ``{queue: survey}`` or ``{user: 005...}``.

    A field that is empty on the event falls back to ``fallback`` (a queue name), and then to the
    ``default`` owner in settings.
    """

    field: str | None = None
    queue: str | None = None
    user: str | None = None
    fallback: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Owner:
        chosen = [k for k in ("field", "queue", "user") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("owner needs exactly one of 'field', 'queue' or 'user'")
        return self


DEFAULT_OWNER = Owner(field="owner_id")

# --- conditions --------------------------------------------------------------------------------


class Test(_Strict):
    """The tests on one field; all given tests must hold."""

    equals: Value | None = None
    not_equals: Value | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    not_in: list[Scalar] | None = None
    greater_than: Value | None = None
    less_than: Value | None = None
    at_least: Value | None = None
    at_most: Value | None = None
    between: tuple[Value, Value] | None = None
    contains: Value | None = None
    matches: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _not_empty(self) -> Test:
        if not self.model_fields_set:
            raise ValueError("a field test needs at least one of: " + ", ".join(TEST_NAMES))
        return self


TEST_NAMES = ("equals", "not_equals", "in", "not_in", "greater_than", "less_than", "at_least",
              "at_most", "between", "contains", "matches", "exists")


class All(_Strict):
    all: list[Condition]


class Any_(_Strict):
    any: list[Condition]


class Not(_Strict):
    not_: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A bare mapping ``{field: test, field: test}`` means all of them.
FieldTests = dict[str, Test]
Condition = All | Any_ | Not | FieldTests

All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()

# --- actions -----------------------------------------------------------------------------------

TaskKind = Literal["discovery", "prompt", "outreach", "acknowledgement", "note", "feedback",
                   "follow_up", "experience", "escalation", "offer", "survey", "review"]
Priority = Literal["low", "normal", "high"]


class TaskSpec(_Strict):
    """create_task: a task for a person. Subject and description are Jinja2 templates."""

    kind: TaskKind
    subject: str
    description: str | None = None
    template: str | None = None  # a file under config/templates/ for the description
    owner: Owner = DEFAULT_OWNER
    due_in: Duration = Duration(days=3)
    priority: Priority = "normal"
    reminder: bool = False  # set a reminder at the due time (the complaint SLA)
    # One task per item of a list variable, e.g. ``added_experiences``; ``{{ item }}`` is the item.
    for_each: str | None = None


class ApologySpec(_Strict):
    """draft_apology: an email draft for the owner to review, plus a review task."""

    template: str
    subject: str
    owner: Owner = DEFAULT_OWNER
    review_due_in: Duration = Duration(days=1)
    acknowledgement_subject: str = "{{ account_name }} complained again: acknowledge, no second apology"
    # The review task that goes with the draft, and the note written instead of a second apology.
    review_subject: str = "Review and send the apology draft to {{ account_name }}"
    review_description: str | None = None
    acknowledgement_description: str | None = None


class CheckInSpec(_Strict):
    """schedule_checkins: the next check-in on the cadence (days after the plan opened)."""

    cadence_days: list[int] | SettingRef = SettingRef(setting="checkin_cadence_days")
    duration_minutes: int = Field(30, ge=5, le=480)
    subject: str = "Check-in with {{ account_name }}"
    description: str | None = None
    owner: Owner = DEFAULT_OWNER


class EscalateSpec(_Strict):
    """escalate: a task for a manager or queue, e.g. by severity."""

    to: Owner
    subject: str
    description: str | None = None
    due_in: Duration = Duration(sla=True)
    priority: Priority = "high"


class SurveySpec(_Strict):
    """add_to_survey: a survey task for a queue, and campaign membership when a campaign is set."""

    owner: Owner = Owner(queue="survey")
    campaign_id: str | None = None
    subject: str = "Survey {{ account_name }} about why they left"
    description: str | None = None
    template: str | None = None  # a file under config/templates/ for the description
    due_in: Duration = Duration(days=7)


class OfferSpec(_Strict):
    """offer: make it easy to return with a named offer from ``settings.offers``."""

    offer: str
    owner: Owner = DEFAULT_OWNER
    subject: str = "Offer {{ account_name }} an easy way back: {{ offer.title }}"
    template: str | None = None
    due_in: Duration = Duration(days=5)


class ClosePlanSpec(_Strict):
    """close_plan: won or lost, with a reason people read."""

    outcome: Literal["won", "lost"]
    reason: str
    follow_up: TaskSpec | None = None  # e.g. "keep it that way" when won


class PublishSpec(_Strict):
    """publish_event: an event for other systems, e.g. ``winback.feedback``."""

    type: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    fields: dict[str, str] = Field(default_factory=dict)  # values are templates


class CreateTaskAction(_Strict):
    create_task: TaskSpec


class DraftApologyAction(_Strict):
    draft_apology: ApologySpec


class ScheduleCheckInsAction(_Strict):
    schedule_checkins: CheckInSpec


class EscalateAction(_Strict):
    escalate: EscalateSpec


class AddToSurveyAction(_Strict):
    add_to_survey: SurveySpec


class OfferAction(_Strict):
    offer: OfferSpec


class ClosePlanAction(_Strict):
    close_plan: ClosePlanSpec


class PublishEventAction(_Strict):
    publish_event: PublishSpec


ActionSpec = (
    CreateTaskAction | DraftApologyAction | ScheduleCheckInsAction | EscalateAction
    | AddToSurveyAction | OfferAction | ClosePlanAction | PublishEventAction
)
ACTION_NAMES = ("create_task", "draft_apology", "schedule_checkins", "escalate", "add_to_survey",
                "offer", "close_plan", "publish_event")


def action_name(action: ActionSpec) -> str:
    """The YAML key of an action, e.g. ``create_task``."""
    return next(iter(type(action).model_fields))


# --- settings and rules ------------------------------------------------------------------------


class ContactBudget(_Strict):
    """At most ``max_actions`` outreach actions to one customer in ``per_days`` days."""

    max_actions: int = Field(4, ge=0)
    per_days: int = Field(30, ge=1)


class Offer(_Strict):
    title: str
    description: str


class RuleSettings(_Strict):
    """Numbers and names the method needs; rules refer to them with ``{setting: name}``."""

    sla_minutes: int = Field(20, ge=1)
    high_value_threshold: float = Field(10_000, ge=0)
    checkin_cadence_days: list[int] = Field(default_factory=lambda: [7, 30, 60, 90], min_length=1)
    move_on_after_checkins: int = Field(3, ge=1)
    contact_budget: ContactBudget = ContactBudget()
    banned_phrases: list[str] = Field(default_factory=lambda: [
        "Are you sure?", "we're so busy", "No problem", "I'll get back to you as soon as I can"])
    come_back_phrases: list[str] = Field(default_factory=lambda: [
        "come back", "return to us", "give us another chance", "win you back", "rejoin",
        "reconsider"])
    owners: dict[str, str] = Field(default_factory=lambda: {"default": "winback-default-owner"})
    offers: dict[str, Offer] = Field(default_factory=dict)

    @field_validator("checkin_cadence_days")
    @classmethod
    def _increasing(cls, days: list[int]) -> list[int]:
        if any(b <= a for a, b in pairwise(days)) or days[0] <= 0:
            raise ValueError("check-in cadence must be positive days in increasing order")
        return days

    @field_validator("owners")
    @classmethod
    def _has_default(cls, owners: dict[str, str]) -> dict[str, str]:
        if "default" not in owners:
            raise ValueError("owners needs a 'default' entry")
        return owners


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    description: str | None = None
    on: EventType
    when: Condition | None = None
    then: list[ActionSpec] = Field(min_length=1)
    stop: bool = False

    @property
    def event_type(self) -> str:
        return SHORT_TYPES[self.on]


class RuleFile(_Strict):
    """The whole ``rules.yaml``."""

    version: str = Field(min_length=1, max_length=40)
    settings: RuleSettings = RuleSettings()
    rules: list[Rule]


def schema() -> dict[str, Any]:
    """JSON Schema of the rules file, for editors and CI."""
    out = RuleFile.model_json_schema(by_alias=True)
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "winback rules"
    return out
