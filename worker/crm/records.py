"""Adapter-neutral field values for ``Record``s, shared by every adapter so they agree exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from handlers.actions import (
    AddToCampaign,
    CreateCase,
    CreateTask,
    DraftEmail,
    Provenance,
    ScheduleCheckIn,
    SetCheckInStatus,
    cancelled_subject,
)

_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))  # "00" to "99"


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    """UTC, whole seconds, ``Z`` suffix: the one datetime text every adapter shows."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # a naive time is local time, as ``astimezone`` takes it
        moment = moment.astimezone(UTC)
    # isoformat's first 19 characters, its two-digit fields from a table: isoformat and %-formats
    # cost about twice as much, and a record body holds several datetimes.
    two = _TWO_DIGITS
    return (f"{moment.year:04d}-{two[moment.month]}-{two[moment.day]}T{two[moment.hour]}:"
            f"{two[moment.minute]}:{two[moment.second]}Z")


def _provenance(p: Provenance) -> dict[str, Any]:
    return {"event_id": p.event_id, "rule_id": p.rule_id, "rules_version": p.rules_version}


def task_fields(a: CreateTask) -> dict[str, Any]:
    return {
        "kind": a.kind, "subject": a.subject, "description": a.description,
        "owner_id": a.owner_id, "due_at": iso(a.due_at), "reminder_at": iso(a.reminder_at),
        "priority": a.priority, "status": "open", "contact_id": a.contact_id, "completed_at": None,
        "plan_key": a.plan_key, **_provenance(a.provenance),
    }


def draft_fields(a: DraftEmail) -> dict[str, Any]:
    return {
        "kind": a.kind, "subject": a.subject, "body_html": a.body_html, "body_text": a.body_text,
        "to_address": a.to_address, "owner_id": a.owner_id, "status": "draft",
        "contact_id": a.contact_id, "plan_key": a.plan_key, **_provenance(a.provenance),
    }


def checkin_fields(a: ScheduleCheckIn) -> dict[str, Any]:
    return {
        "slot": a.slot, "subject": a.subject, "description": a.description,
        "start_at": iso(a.start_at), "duration_minutes": a.duration_minutes,
        "owner_id": a.owner_id, "contact_id": a.contact_id, "status": "pending",
        "plan_key": a.plan_key, **_provenance(a.provenance),
    }


def checkin_update(fields: dict[str, Any], a: SetCheckInStatus) -> dict[str, Any]:
    """A check-in's fields after ``a``, as the Salesforce adapter changes its Event: held, it
    moves to when it took place; cancelled, its subject says so."""
    changed: dict[str, Any] = {"status": a.status}
    if a.status == "cancelled":
        changed["subject"] = cancelled_subject(str(fields.get("subject") or ""))
    elif a.held_at is not None:
        changed["start_at"] = iso(a.held_at)
        if a.duration_minutes:
            changed["duration_minutes"] = a.duration_minutes
    return fields | changed


def case_fields(a: CreateCase) -> dict[str, Any]:
    return {
        "kind": a.kind, "subject": a.subject, "description": a.description,
        "owner_id": a.owner_id, "priority": a.priority, "status": "open",
        "contact_id": a.contact_id, "plan_key": a.plan_key, **_provenance(a.provenance),
    }


def campaign_fields(a: AddToCampaign) -> dict[str, Any]:
    return {
        "campaign_id": a.campaign_id, "contact_id": a.contact_id, "plan_key": a.plan_key,
        **_provenance(a.provenance),
    }
