"""The rules file as typed, frozen models: the settings, a rule, and the whole ``rules.yaml``.

The JSON Schema an editor uses for completion is generated from these models
(``winback rules schema``), so this module and the ones it imports are the one definition of the
file's shape: the shared building blocks are in ``model_common``, a rule's ``when`` in
``model_conditions`` and its ``then`` in ``model_actions``. Every name is re-exported from here.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator

from handlers.events import EVENT_TYPES
from handlers.rules.model_actions import (
    ACTION_NAMES,
    QUEUE_ACTIONS,
    ActionSpec,
    AddToSurveyAction,
    ApologySpec,
    CaseSpec,
    CheckInSpec,
    ClosePlanAction,
    ClosePlanSpec,
    CreateTaskAction,
    DraftApologyAction,
    EscalateAction,
    EscalateSpec,
    OfferAction,
    OfferSpec,
    OpenCaseAction,
    Priority,
    PublishEventAction,
    PublishSpec,
    ScheduleCheckInsAction,
    SurveySpec,
    TaskKind,
    TaskSpec,
    action_name,
)
from handlers.rules.model_common import (
    DEFAULT_OWNER,
    Duration,
    Owner,
    Scalar,
    SettingRef,
    StrictModel,
    Value,
)
from handlers.rules.model_conditions import TEST_NAMES, All, Any_, Condition, FieldTests, Not, Test

__all__ = [
    "ACTION_NAMES",
    "DEFAULT_OWNER",
    "QUEUE_ACTIONS",
    "SHORT_TYPES",
    "TEST_NAMES",
    "ActionSpec",
    "AddToSurveyAction",
    "All",
    "Any_",
    "ApologySpec",
    "CaseSpec",
    "CheckInSpec",
    "ClosePlanAction",
    "ClosePlanSpec",
    "Condition",
    "ContactBudget",
    "CreateTaskAction",
    "DraftApologyAction",
    "Duration",
    "EscalateAction",
    "EscalateSpec",
    "EventType",
    "FieldTests",
    "Not",
    "Offer",
    "OfferAction",
    "OfferSpec",
    "OpenCaseAction",
    "Owner",
    "Priority",
    "PublishEventAction",
    "PublishSpec",
    "Rule",
    "RuleFile",
    "RuleSettings",
    "Scalar",
    "ScheduleCheckInsAction",
    "SettingRef",
    "SurveySpec",
    "TaskKind",
    "TaskSpec",
    "Test",
    "Value",
    "action_name",
    "schema",
]

SHORT_TYPES = {t.removeprefix("crm."): t for t in EVENT_TYPES}
EventType = Literal["customer.lapsed", "complaint.logged", "meeting.held"]


class ContactBudget(StrictModel):
    """At most ``max_actions`` outreach actions to one customer in ``per_days`` days."""

    max_actions: int = Field(4, ge=0)
    per_days: int = Field(30, ge=1)


class Offer(StrictModel):
    title: str
    description: str


class RuleSettings(StrictModel):
    """Numbers and names the method needs; rules refer to them with ``{setting: name}``."""

    sla_minutes: int = Field(20, ge=1)
    high_value_threshold: float = Field(10_000, ge=0)
    checkin_cadence_days: list[int] = Field(default_factory=lambda: [7, 30, 60, 90], min_length=1)
    move_on_after_checkins: int = Field(3, ge=1)
    # Know when to move on: this many check-ins not held closes the plan (``unless_held``).
    move_on_after_missed_checkins: int = Field(2, ge=1)
    # Let them go: for this many days after a plan closes as lost, a complaint is still
    # acknowledged (service is owed) but no new plan, apology or offer is written.
    move_on_cooloff_days: int = Field(180, ge=0, le=3650)
    contact_budget: ContactBudget = ContactBudget()
    banned_phrases: list[str] = Field(default_factory=lambda: [
        "Are you sure?", "we're so busy", "No problem", "I'll get back to you as soon as I can"])
    come_back_phrases: list[str] = Field(default_factory=lambda: [
        "come back", "return to us", "give us another chance", "win you back", "rejoin",
        "reconsider"])
    owners: dict[str, str] = Field(default_factory=lambda: {"default": "account_owner"})
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


class Rule(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    description: str | None = None
    on: EventType
    when: Condition | None = None
    then: list[ActionSpec] = Field(min_length=1)
    stop: bool = False

    @property
    def event_type(self) -> str:
        return SHORT_TYPES[self.on]


class RuleFile(StrictModel):
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
