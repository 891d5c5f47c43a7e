"""CRM actions: the frozen values handlers return and CRM adapters write, each with its own key.

Every action that creates a record carries a deterministic ``key`` derived from the plan and the
event, so a redelivered or replayed event writes the same key and never a second record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from handlers.owners import Relation
from handlers.plan import Plan, Suppression

Priority = Literal["low", "normal", "high"]

# Task kinds that reach out to the customer: counted against the contact budget and suppressed by
# do-not-contact or a closed plan. The rest are internal work for the owner or other teams.
OUTREACH_KINDS: frozenset[str] = frozenset(
    {"discovery", "outreach", "offer", "survey", "apology", "check_in"}
)


@dataclass(frozen=True)
class Provenance:
    """Which event and which rule, under which rules version, caused an action."""

    event_id: str
    rule_id: str
    rules_version: str


@dataclass(frozen=True)
class CreateTask:
    key: str
    plan_key: str
    account_id: str
    kind: str
    subject: str
    description: str
    owner_id: str | None
    due_at: datetime
    priority: Priority
    provenance: Provenance
    contact_id: str | None = None
    reminder_at: datetime | None = None
    assign: Relation | None = None  # the CRM still has to follow it (handlers.owners.Assignee)


@dataclass(frozen=True)
class DraftEmail:
    """An email for the owner to review and send; the worker never sends it."""

    key: str
    plan_key: str
    account_id: str
    kind: str
    subject: str
    body_html: str
    body_text: str
    owner_id: str | None
    provenance: Provenance
    to_address: str | None = None
    contact_id: str | None = None
    assign: Relation | None = None


@dataclass(frozen=True)
class CreateCase:
    """A Case for a team (an escalation, product feedback): the one record a queue may own.

    ``owner_id`` is a user or, resolved at start-up, a queue that takes Cases (``00G…`` in
    Salesforce; the queue's ``queue:Name`` text in the embedded CRM, which has no queues).
    """

    key: str
    plan_key: str
    account_id: str
    kind: str
    subject: str
    description: str
    owner_id: str | None
    priority: Priority
    provenance: Provenance
    contact_id: str | None = None
    assign: Relation | None = None


@dataclass(frozen=True)
class ScheduleCheckIn:
    key: str
    plan_key: str
    account_id: str
    slot: int
    start_at: datetime
    duration_minutes: int
    subject: str
    description: str
    owner_id: str | None
    provenance: Provenance
    contact_id: str | None = None
    assign: Relation | None = None


@dataclass(frozen=True)
class SetCheckInStatus:
    """Mark scheduled check-ins ``done`` (the meeting took place) or ``cancelled`` (plan closed).

    The calendar tells the truth: a check-in held at another time than booked moves to
    ``held_at`` (keeping ``duration_minutes`` when known), and a cancelled one keeps its record
    but its subject starts with ``CANCELLED_PREFIX`` and it no longer blocks the owner's time.
    """

    plan_key: str
    account_id: str
    keys: tuple[str, ...]
    status: Literal["done", "cancelled"]
    reason: str
    provenance: Provenance
    held_at: datetime | None = None
    duration_minutes: int | None = None


CANCELLED_PREFIX = "Cancelled: "


def cancelled_subject(subject: str) -> str:
    """The subject a cancelled check-in shows; marking it twice does not prefix it twice."""
    return subject if subject.startswith(CANCELLED_PREFIX) else CANCELLED_PREFIX + subject


@dataclass(frozen=True)
class AddToCampaign:
    """Route a low-value lapse to a survey: campaign membership in Salesforce, a row locally."""

    key: str
    plan_key: str
    account_id: str
    campaign_id: str
    contact_id: str | None
    provenance: Provenance


@dataclass(frozen=True)
class PublishEvent:
    """An event for other systems, published on the exchange after the CRM writes commit; with
    ``due_at``, a timer for the worker itself, which comes back to the work queue at that time."""

    key: str
    routing_key: str
    payload: dict[str, Any]
    provenance: Provenance
    due_at: datetime | None = None


@dataclass(frozen=True)
class SavePlan:
    """Store the plan at ``plan.revision``; refused (PlanConflictError) unless the stored plan is
    still at the revision before it, i.e. nobody saved it since it was read.

    ``plan.suppressed[suppressed_from:]`` are the suppressions this save adds: Salesforce writes
    each as a Winback_Suppression__c record of the plan, for reports by reason."""

    plan: Plan
    suppressed_from: int = 0

    @property
    def new_suppressions(self) -> tuple[tuple[int, Suppression], ...]:
        """(1-based position on the plan, suppression) of each suppression this save adds."""
        start = min(max(self.suppressed_from, 0), len(self.plan.suppressed))
        return tuple((n, s) for n, s in enumerate(self.plan.suppressed, start=1) if n > start)


def revision_marker(plan: Plan) -> str:
    """The ledger entry that claims a plan revision: the second claim of the same one fails."""
    return f"plan-revision:{plan.key}@{plan.revision}"


REVISION_MARKER_TYPE = "winback.plan.revision"


Action = (
    CreateTask | DraftEmail | ScheduleCheckIn | SetCheckInStatus | AddToCampaign | CreateCase
    | PublishEvent | SavePlan
)


@dataclass(frozen=True)
class EventChange:
    """Everything one event writes; adapters apply it atomically or not at all."""

    event_id: str
    event_type: str
    account_id: str
    actions: tuple[Action, ...] = field(default_factory=tuple)

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not isinstance(a, PublishEvent))

    @property
    def publishes(self) -> tuple[PublishEvent, ...]:
        return tuple(a for a in self.actions if isinstance(a, PublishEvent))
