"""The CRM port every adapter implements, and the record view ``winback crm list`` shows."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from handlers.actions import EventChange, PublishEvent
from handlers.errors import WinbackError
from handlers.events import StepState
from handlers.figures import Acknowledgements
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet

RecordKind = Literal["plan", "task", "email_draft", "checkin", "campaign_member", "case"]


@dataclass(frozen=True)
class Outgoing:
    """An event for other systems, as the ledger keeps it beside the event that caused it.

    The ledger is the outbox: the outgoing events are committed with the CRM writes, so a worker
    that dies after the commit and before publishing does not lose them. The redelivery is found
    in the ledger and its outgoing events are published again (at least once; ``message_id`` is
    stable, so listeners can drop the repeat).
    """

    message_id: str
    routing_key: str
    payload: dict[str, Any]
    due_at: str | None = None  # ISO 8601: a timer, which waits in the delay tiers until then

    @classmethod
    def of(cls, event: PublishEvent) -> Outgoing:
        due = event.due_at.isoformat() if event.due_at else None
        return cls(event.key, event.routing_key, event.payload, due)

    @property
    def due(self) -> datetime | None:
        return datetime.fromisoformat(self.due_at) if self.due_at else None


def outbox_json(outgoing: Sequence[Outgoing]) -> str | None:
    """The ledger's text for ``outgoing``; None when there is nothing to keep."""
    if not outgoing:
        return None
    # The fields by name (``dataclasses.asdict`` deep-copies each payload: slow, once per event).
    kept = [{k: v for k, v in vars(o).items() if v is not None} for o in outgoing]
    return json.dumps(kept, separators=(",", ":"))


def outbox_from_json(text: str | None) -> tuple[Outgoing, ...]:
    return tuple(Outgoing(**o) for o in json.loads(text)) if text else ()


@dataclass(frozen=True)
class Snapshot:
    """What the handlers need to know before a batch: latest plan per account, events done, and
    the outgoing events the done ones left in the ledger (``outbox``, only those with some)."""

    plans: dict[str, Plan] = field(default_factory=dict)
    processed: frozenset[str] = frozenset()
    outbox: dict[str, tuple[Outgoing, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One CRM record as people see it, the same shape whichever adapter wrote it.

    ``fields`` holds the adapter-neutral values (subject, owner_id, due_at as ISO text, status...),
    so the contract tests can compare adapters record for record. The fields per kind:

    - plan: ``Plan.model_dump(mode="json")`` exactly (the whole plan state).
    - task: kind, subject, description, owner_id, due_at, reminder_at, priority, status ("open", or
      "done" once a person completed it in the CRM), contact_id, completed_at (when it was
      completed, read back from the CRM: Task.CompletedDateTime in Salesforce), plan_key,
      event_id, rule_id, rules_version.
    - email_draft: kind, subject, body_html, body_text, to_address, owner_id, status ("draft"),
      contact_id, plan_key, event_id, rule_id, rules_version.
    - checkin: slot, subject, description, start_at, duration_minutes, owner_id, contact_id,
      status ("pending" | "cancelled"), plan_key, event_id, rule_id, rules_version.
    - campaign_member: campaign_id, contact_id, plan_key, event_id, rule_id, rules_version.
    - case: kind, subject, description, owner_id (a user, or a queue: ``00G…`` in Salesforce,
      ``queue:<name>`` in the embedded CRM), priority, status ("open" | "done"), contact_id,
      plan_key, event_id, rule_id, rules_version.

    Datetimes are ISO 8601 text in UTC with a ``Z`` suffix and whole seconds
    (``2026-11-22T10:20:00Z``); absent values are ``None``.
    """

    kind: RecordKind
    key: str
    account_id: str
    fields: dict[str, Any]


class Crm(Protocol):
    """Where plans, tasks, drafts and check-ins live.

    ``apply`` writes each ``EventChange`` atomically, together with a ledger entry for its event id
    that keeps its outgoing events (see ``Outgoing``), and returns one result per change in order:
    ``None`` when committed, else the ``WinbackError`` (transient or permanent) that kept that
    change out. A failure of one change never affects another. Errors of the underlying library
    are converted to ``WinbackError`` inside the adapter.
    """

    name: str

    def check(self) -> None:
        """Verify the CRM is usable (connection, schema, permissions).

        Raises ConfigError when it never will be without someone's help (credentials, metadata),
        and a TransientError when it is only unreachable for now: the worker then waits.
        """

    def resolve_owners(self, rules: RuleSet) -> RuleSet:
        """``rules`` with every owner it names resolved to a user id (``RuleSet.owner_ids``).

        Raises ReferencesInvalidError (one line, each problem at file:line) when the rules name
        an owner or campaign the CRM does not have, or one of the wrong kind (a queue for a task).
        """

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        """Latest plan (open or closed) of each account, which event ids are already applied, and
        the outgoing events kept with them."""

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        """Write each change atomically with its ledger entry; one result per change."""

    def records(self, account_id: str | None = None) -> list[Record]:
        """Every record written, optionally for one account, in a stable order."""

    def step_states(self, keys: Mapping[str, str]) -> dict[str, StepState]:
        """The state now of each task or check-in by key (``keys`` maps each to its account id),
        as a timer needs it: a task ``open`` or ``done`` (closed by a person in the CRM), a
        check-in ``pending``, ``done`` or ``cancelled``; a key with no record is ``missing``."""

    def acknowledgements(self) -> dict[str, Acknowledgements]:
        """Each plan's acknowledgement fields as stored, by plan key (Salesforce:
        ``Acknowledged_At__c`` and ``Acks_In_SLA__c``, ``_Late__c``, ``_Pending__c``); a plan whose
        fields were never written has none, or zeros."""

    def write_acknowledgements(self, values: Mapping[str, Acknowledgements]) -> None:
        """Store those fields for each plan key (``worker.report.rollups`` keeps them up to date)."""

    def close(self) -> None:
        """Release connections and files."""


@runtime_checkable
class MetersApiCalls(Protocol):
    """An adapter whose CRM rations API calls (Salesforce's daily allowance) says how many are left."""

    def api_allowance(self) -> tuple[int | None, int]:
        """(remaining calls, last seen or None if not yet known; the floor the worker slows at)."""
