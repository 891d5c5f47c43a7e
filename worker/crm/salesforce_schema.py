"""What the adapter needs of the org (objects, fields, permissions), checked against describe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.crm.salesforce_records import (
    CASE_FIELDS,
    EMAIL_FIELDS,
    EVENT_FIELDS,
    EVENT_UPDATED,
    LEDGER,
    LEDGER_FIELDS,
    LEDGER_KEY,
    MEMBER_FIELDS,
    PLAN,
    PLAN_FIELDS,
    PLAN_KEY,
    ROLLUP_FIELDS,
    SUPPRESSION,
    SUPPRESSION_FIELDS,
    TASK_FIELDS,
)


@dataclass(frozen=True)
class Needs:
    """One object: the fields written on create, those also updated, and the unique keys."""

    object: str
    fields: tuple[str, ...]
    updated: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


NEEDS: tuple[Needs, ...] = (
    Needs(LEDGER, LEDGER_FIELDS, keys=(LEDGER_KEY,)),
    Needs(PLAN, (*PLAN_FIELDS, *ROLLUP_FIELDS, "OwnerId"),
          updated=(*(f for f in PLAN_FIELDS if f != PLAN_KEY), *ROLLUP_FIELDS), keys=(PLAN_KEY,)),
    Needs(SUPPRESSION, SUPPRESSION_FIELDS, keys=(SUPPRESSION_FIELDS[0],)),
    Needs("Task", TASK_FIELDS),
    Needs("Event", EVENT_FIELDS, updated=EVENT_UPDATED),
    Needs("EmailMessage", EMAIL_FIELDS),
    Needs("CampaignMember", MEMBER_FIELDS),
    Needs("Case", CASE_FIELDS),  # team work a rule sends to a queue (open_case)
)
HINT = (
    "deploy config/salesforce (sf project deploy start --source-dir force-app) and assign the "
    "Winback_Integration permission set to the integration user; see docs/salesforce.md"
)


def problems(describes: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """Every gap between the org (``describe`` per object, None if missing) and ``NEEDS``."""
    found: list[str] = []
    for needs in NEEDS:
        describe = describes.get(needs.object)
        if describe is None:
            found.append(f"object {needs.object} is missing or not visible to the user")
            continue
        found += _object_problems(needs, describe)
    return found


def _object_problems(needs: Needs, describe: Mapping[str, Any]) -> list[str]:
    name = needs.object
    found = []
    if not describe.get("queryable", True):
        found.append(f"no permission to read {name}")
    if not describe.get("createable"):
        found.append(f"no permission to create {name}")
    if needs.updated and not describe.get("updateable"):
        found.append(f"no permission to edit {name}")
    fields = {f["name"]: f for f in describe.get("fields", ())}
    for field in needs.fields:
        info = fields.get(field)
        if info is None:
            found.append(f"field {name}.{field} is missing or hidden by field-level security")
        elif not info.get("createable"):
            found.append(f"field {name}.{field} is read-only for the user (field-level security)")
        elif field in needs.updated and not info.get("updateable"):
            found.append(f"field {name}.{field} cannot be updated by the user")
        elif field in needs.keys and not (info.get("externalId") and info.get("unique")):
            found.append(f"field {name}.{field} must be a unique External ID: idempotency relies on it")
    return found
