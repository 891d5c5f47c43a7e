"""The win-back plan kept per account: stage, beliefs, apology, check-ins, movement and outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Stage = Literal["discovering", "planning", "re-engaging", "checking-in", "won", "lost"]
CLOSED_STAGES: frozenset[str] = frozenset({"won", "lost"})
Status = Literal["none", "open", "done"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Meeting(_Frozen):
    """One meeting as recorded on the plan, with the movement it showed."""

    meeting_id: str
    held_at: datetime
    kind: str
    sentiment: int | None = None
    movement: int | None = None  # sentiment minus the previous meeting's; None when unknown
    notes: str | None = None


class CheckIn(_Frozen):
    """A check-in slot on the cadence; ``slot`` is 1-based and unique per plan."""

    slot: int
    key: str
    start_at: datetime
    status: Literal["pending", "done", "cancelled"] = "pending"
    duration_minutes: int | None = None  # None on plans saved before it was kept


class Timer(_Frozen):
    """A follow-up check the worker set for itself: at ``due_at`` it looks at ``step_key`` (a task
    or check-in) in the CRM and acts if it is not done. ``round`` 2 is a second escalation."""

    key: str
    kind: Literal["unless_done", "unless_held"]
    step_key: str
    due_at: datetime
    rule_id: str
    round: int = 1
    status: Literal["pending", "met", "acted", "cancelled"] = "pending"


class Breach(_Frozen):
    """A promise not kept: an acknowledgement past its deadline, or a check-in not held."""

    at: datetime
    timer_key: str
    step_key: str
    kind: Literal["sla", "checkin"]
    severity: str | None = None
    round: int = 1


class Contact(_Frozen):
    """One outreach to the customer, counted against the contact budget."""

    at: datetime
    kind: str
    key: str


class Suppression(_Frozen):
    """An action the worker did not write, and why."""

    at: datetime
    event_id: str
    rule_id: str
    action: str
    key: str
    reason: str
    code: str | None = None  # the guard that blocked it (budget, do_not_contact...), to group by


class Change(_Frozen):
    """One change to the plan, with the rules version and rule that caused it."""

    at: datetime
    event_id: str
    rules_version: str
    rule_id: str
    what: str


class Plan(_Frozen):
    """The win-back plan for one account. Closed plans stay as history; a new lapse opens a new one."""

    key: str
    account_id: str
    seq: int
    stage: Stage
    # Bumped on every save; a CRM write only lands on the revision it was computed from, so two
    # replicas handling the same account at once cannot overwrite each other's changes.
    revision: int = 0
    opened_at: datetime
    opened_by: str
    account_name: str | None = None
    owner_id: str | None = None
    contact_id: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    annual_value: float | None = None
    currency: str | None = None
    do_not_contact: bool = False
    paused: bool = False  # an owner paused the plan in the CRM (Winback_Plan__c.Paused__c)
    approach: Literal["individual", "survey"] | None = None
    lapse_reason: str | None = None
    desired_result: str | None = None
    current_beliefs: tuple[str, ...] = ()
    target_beliefs: tuple[str, ...] = ()
    new_experiences: tuple[str, ...] = ()
    feedback: tuple[str, ...] = ()
    discovery: Status = "none"
    apology: Literal["none", "drafted"] = "none"
    apology_key: str | None = None
    complaints: tuple[str, ...] = ()
    meetings: tuple[Meeting, ...] = ()
    checkins: tuple[CheckIn, ...] = ()
    checkins_without_movement: int = 0
    timers: tuple[Timer, ...] = ()
    breaches: tuple[Breach, ...] = ()
    missed_checkins: int = 0
    contacts: tuple[Contact, ...] = ()
    suppressed: tuple[Suppression, ...] = ()
    history: tuple[Change, ...] = ()
    outcome: Literal["won", "lost"] | None = None
    closed_at: datetime | None = None
    closing_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.stage not in CLOSED_STAGES

    @property
    def checkins_done(self) -> int:
        return sum(1 for c in self.checkins if c.status == "done")

    @property
    def pending_checkins(self) -> tuple[CheckIn, ...]:
        return tuple(c for c in self.checkins if c.status == "pending")

    @property
    def pending_timers(self) -> tuple[Timer, ...]:
        return tuple(t for t in self.timers if t.status == "pending")

    def will_act(self, timer: Timer) -> bool:
        """Whether ``timer`` still acts when it comes due. Closing a plan cancels its timers, so one
        pending on a closed plan was set afterwards: a complaint's acknowledgement in the cool-off,
        which is still owed. Any other timer on a closed plan does nothing."""
        return timer.status == "pending" and (self.is_open or timer.kind == "unless_done")

    @property
    def waiting_timers(self) -> tuple[Timer, ...]:
        """The timers still ahead that will act: what the timeline and ``plan show`` list."""
        return tuple(t for t in self.timers if self.will_act(t))

    @property
    def last_sentiment(self) -> int | None:
        for meeting in reversed(self.meetings):
            if meeting.sentiment is not None:
                return meeting.sentiment
        return None


def plan_key(account_id: str, seq: int) -> str:
    """Deterministic key of the account's ``seq``-th plan, the idempotency key of its record."""
    return f"{account_id}#{seq}"


def amended(plan: Plan, update: Mapping[str, Any]) -> Plan:
    """``plan.model_copy(update=update)``, made directly: the same new plan, unvalidated as
    model_copy's is, for about half its cost (it goes through ``copy.copy`` three times and
    generic checks); every write to a plan makes one, several an event.

    The one place that builds a model from pydantic's instance attributes: its field values,
    the names set, and no extra or private values, which ``Plan`` (extra forbidden, no private
    attributes) never has. ``tests/unit/test_plan_copy.py`` holds it to ``model_copy``."""
    copied = Plan.__new__(Plan)
    object.__setattr__(copied, "__dict__", {**plan.__dict__, **update})
    object.__setattr__(copied, "__pydantic_extra__", None)
    object.__setattr__(copied, "__pydantic_fields_set__", plan.model_fields_set | update.keys())
    object.__setattr__(copied, "__pydantic_private__", None)
    return copied
