"""Where each CRM action lands in Salesforce (object and fields), and each row back as a ``Record``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

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
from handlers.figures import DISCOVERY_MEETING, Acknowledgements, general_reason
from handlers.plan import Plan, Suppression
from handlers.timeline import timeline_text
from worker.crm.port import Record
from worker.crm.records import iso

PLAN, LEDGER = "Winback_Plan__c", "Winback_Ledger__c"
PLAN_KEY, LEDGER_KEY, KEY = "Plan_Key__c", "Event_Id__c", "Winback_Key__c"
TASK_OPEN, EMAIL_DRAFT = "Not Started", "5"
PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High"}
_SALESFORCE_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_PROVENANCE = ("Winback_Plan_Key__c", "Winback_Event_Id__c", "Winback_Rule_Id__c",
               "Winback_Rules_Version__c")

# The fields the adapter writes per object (the start-up check requires them) and reads back.
OUTBOX = "Outbox_Json__c"
LEDGER_FIELDS = (LEDGER_KEY, "Event_Type__c", "Account_Id__c", OUTBOX)
# Written for Salesforce reports and people reading the plan; never read back (the JSON state is).
TIMELINE_LENGTH = 32768  # Timeline__c's length in the shipped metadata
REPORT_FIELDS = (
    "First_Contact_At__c", "Won_At__c", "Lost_At__c", "Last_Movement__c", "Complaints__c",
    "Checkins_Scheduled__c", "Suppressions__c", "SLA_Breaches__c", "Timeline__c",
)
# Copied from the acknowledgement tasks by the figure sampler (``worker.report.rollups``), never
# by a plan save: a task's completion is not an event, and "late" changes with the clock alone.
ACKNOWLEDGED_AT, ACKS = "Acknowledged_At__c", ("Acks_In_SLA__c", "Acks_Late__c", "Acks_Pending__c")
ROLLUP_FIELDS = (ACKNOWLEDGED_AT, *ACKS)
# One record per action not written, a detail of its plan (reports group them by reason).
SUPPRESSION = "Winback_Suppression__c"
SUPPRESSION_FIELDS = (KEY, "Plan__c", "At__c", "Event_Id__c", "Rule_Id__c", "Action__c",
                      "Record_Key__c", "Reason_Code__c", "Reason__c")
PLAN_FIELDS = (
    "Name", PLAN_KEY, "Account_Id__c", "Account__c", "Seq__c", "Stage__c", "Outcome__c", "Approach__c",
    "Opened_At__c", "Closed_At__c", "Closing_Reason__c", "Desired_Result__c", "Lapse_Reason__c",
    "Annual_Value__c", "Checkins_Done__c", "Checkins_Without_Movement__c", "Do_Not_Contact__c",
    "Apology_Drafted__c", "Last_Sentiment__c", "State_Json__c", *REPORT_FIELDS,
)
TASK_FIELDS = (
    "Subject", "Description", "ActivityDate", "Priority", "Status", "OwnerId", "WhatId", "WhoId",
    "IsReminderSet", "ReminderDateTime", KEY, "Winback_Kind__c", "Winback_Due_At__c", *_PROVENANCE,
)
EVENT_FIELDS = (
    "Subject", "Description", "StartDateTime", "DurationInMinutes", "OwnerId", "WhatId", "WhoId",
    "ShowAs", KEY, "Winback_Slot__c", "Winback_Status__c", *_PROVENANCE,
)
EVENT_UPDATED = ("ShowAs", "Winback_Status__c", "Subject", "StartDateTime", "DurationInMinutes")
EMAIL_FIELDS = (
    "Subject", "HtmlBody", "TextBody", "ToAddress", "Status", "IsPrivateDraft", "RelatedToId", KEY,
    "Winback_Kind__c", "Winback_Owner_Id__c", "Winback_Contact_Id__c", *_PROVENANCE,
)
CASE_FIELDS = (
    "Subject", "Description", "Priority", "Status", "OwnerId", "AccountId", "ContactId", KEY,
    "Winback_Kind__c", *_PROVENANCE,
)
CASE_PRIORITIES = {"low": "Low", "normal": "Medium", "high": "High"}  # Case's standard values
CASE_NEW = "New"
MEMBER_FIELDS = ("CampaignId", "ContactId", KEY, "Winback_Account_Id__c", *_PROVENANCE)
_READ_ONLY = ("Id", "CreatedById", "CreatedDate")
SELECTS: dict[str, tuple[str, ...]] = {
    PLAN: ("Id", PLAN_KEY, "Seq__c", "State_Json__c", "Paused__c"),
    "Task": (*_READ_ONLY, "IsClosed", "CompletedDateTime", *TASK_FIELDS),
    "Event": (*_READ_ONLY, *EVENT_FIELDS),
    "EmailMessage": (*_READ_ONLY, *EMAIL_FIELDS),
    "CampaignMember": (*_READ_ONLY, *MEMBER_FIELDS),
    "Case": (*_READ_ONLY, "IsClosed", *CASE_FIELDS),
}


def is_salesforce_id(value: str | None) -> bool:
    """Shaped like a record id; Salesforce refuses a whole query over one id that is not."""
    return value is not None and _SALESFORCE_ID.fullmatch(value) is not None


def _provenance(plan_key: str, p: Provenance) -> dict[str, Any]:
    return {"Winback_Plan_Key__c": plan_key, "Winback_Event_Id__c": p.event_id,  # _PROVENANCE
            "Winback_Rule_Id__c": p.rule_id, "Winback_Rules_Version__c": p.rules_version}


def _present(body: dict[str, Any]) -> dict[str, Any]:
    # On create an absent value is left out: a null OwnerId would be an error, not a default.
    return {name: value for name, value in body.items() if value is not None}


def ledger_body(event_id: str, event_type: str, account_id: str, outbox: str | None = None) -> dict[str, Any]:
    body = {LEDGER_KEY: event_id, "Event_Type__c": event_type[:100], "Account_Id__c": account_id}
    return body | ({OUTBOX: outbox} if outbox else {})


def plan_body(plan: Plan, owner_id: str | None = None) -> dict[str, Any]:
    """Upsert body (the key travels in the URL): report fields, and the whole state as JSON.

    ``owner_id`` is the plan owner when the org has that user (else the integration user keeps it).
    """
    body = {
        "Name": f"{plan.account_name or plan.account_id} #{plan.seq}",  # fitted when written
        "Account_Id__c": plan.account_id, "Account__c": plan.account_id, "Seq__c": plan.seq,
        "Stage__c": plan.stage,
        "Outcome__c": plan.outcome, "Approach__c": plan.approach,
        "Opened_At__c": iso(plan.opened_at), "Closed_At__c": iso(plan.closed_at),
        "Closing_Reason__c": plan.closing_reason or None,
        "Desired_Result__c": plan.desired_result, "Lapse_Reason__c": plan.lapse_reason,
        "Annual_Value__c": plan.annual_value, "Checkins_Done__c": plan.checkins_done,
        "Checkins_Without_Movement__c": plan.checkins_without_movement,
        "Do_Not_Contact__c": plan.do_not_contact, "Apology_Drafted__c": plan.apology == "drafted",
        "Last_Sentiment__c": plan.last_sentiment,
        "State_Json__c": plan.model_dump_json(),  # compact JSON, as pydantic writes it: fast
        **report_fields(plan),
    }
    if owner_id:  # an upsert sends nulls to clear fields, but never a null owner
        body["OwnerId"] = owner_id
    return body


def report_fields(plan: Plan) -> dict[str, Any]:
    """The figures' inputs as plain fields, so Salesforce reports need not parse the JSON state."""
    contact = [m.held_at for m in plan.meetings if m.kind == DISCOVERY_MEETING]
    movement = next((m.movement for m in reversed(plan.meetings) if m.movement is not None), None)
    return {
        "First_Contact_At__c": iso(min(contact)) if contact else None,
        "Won_At__c": iso(plan.closed_at) if plan.outcome == "won" else None,
        "Lost_At__c": iso(plan.closed_at) if plan.outcome == "lost" else None,
        "Last_Movement__c": movement, "Complaints__c": len(plan.complaints),
        "Checkins_Scheduled__c": len(plan.checkins), "Suppressions__c": len(plan.suppressed),
        "SLA_Breaches__c": sum(1 for b in plan.breaches if b.kind == "sla"),
        "Timeline__c": timeline_text(plan, TIMELINE_LENGTH) or None,
    }


def suppression_key(plan: Plan, position: int) -> str:
    return f"{plan.key}:suppressed:{position}"


def suppression_body(plan: Plan, position: int, s: Suppression) -> dict[str, Any]:
    """The plan's ``position``-th suppression, hung from the plan by its key (one graph, no id)."""
    return _present({
        KEY: suppression_key(plan, position), "Plan__r": {PLAN_KEY: plan.key}, "At__c": iso(s.at),
        "Event_Id__c": s.event_id, "Rule_Id__c": s.rule_id, "Action__c": s.action[:40],
        "Record_Key__c": s.key, "Reason_Code__c": s.code, "Reason__c": general_reason(s.reason),
    })


def acknowledgement_body(acks: Acknowledgements) -> dict[str, Any]:
    values = (acks.in_sla, acks.late, acks.pending)
    return {ACKNOWLEDGED_AT: iso(acks.acknowledged_at), **dict(zip(ACKS, values, strict=True))}


def acknowledgements_of(row: dict[str, Any]) -> Acknowledgements:
    counts = (int(row.get(name) or 0) for name in ACKS)
    return Acknowledgements(_moment(row.get(ACKNOWLEDGED_AT)), *counts)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC).replace(microsecond=0) if text else None


def task_body(a: CreateTask) -> dict[str, Any]:
    due = iso(a.due_at)
    return _present({
        "Subject": a.subject, "Description": a.description, "Priority": PRIORITIES[a.priority],
        "ActivityDate": due[:10], "Status": TASK_OPEN,  # the due time's date in UTC
        "OwnerId": a.owner_id, "WhatId": a.account_id, "WhoId": a.contact_id,
        "IsReminderSet": a.reminder_at is not None, "ReminderDateTime": iso(a.reminder_at),
        KEY: a.key, "Winback_Kind__c": a.kind, "Winback_Due_At__c": due,
        **_provenance(a.plan_key, a.provenance),
    })


def checkin_body(a: ScheduleCheckIn, status: str = "pending") -> dict[str, Any]:
    return _present({
        "Subject": a.subject, "Description": a.description, "StartDateTime": iso(a.start_at),
        "DurationInMinutes": a.duration_minutes, "OwnerId": a.owner_id, "WhatId": a.account_id,
        "WhoId": a.contact_id, "ShowAs": "Busy" if status == "pending" else "Free",
        KEY: a.key, "Winback_Slot__c": a.slot, "Winback_Status__c": status,
        **_provenance(a.plan_key, a.provenance),
    })


def checkin_update(a: SetCheckInStatus, subject: str | None) -> dict[str, Any]:
    """The calendar tells the truth: a held check-in moves to when it was held; a cancelled one
    says so in its subject (``subject`` is the Event's now) and no longer blocks the owner's time.
    """
    if a.status == "cancelled":
        body: dict[str, Any] = {"Winback_Status__c": a.status, "ShowAs": "Free"}
        return body | ({"Subject": cancelled_subject(subject)} if subject is not None else {})
    body = {"Winback_Status__c": a.status}
    if a.held_at is not None:
        body["StartDateTime"] = iso(a.held_at)
        if a.duration_minutes:  # sent with the start, so the end moves with it
            body["DurationInMinutes"] = a.duration_minutes
    return body


def draft_body(a: DraftEmail) -> dict[str, Any]:
    return _present({
        "Subject": a.subject, "HtmlBody": a.body_html, "TextBody": a.body_text,
        # A shared draft: the owner, not only the integration user that wrote it, can edit and send.
        "ToAddress": a.to_address, "Status": EMAIL_DRAFT, "IsPrivateDraft": False,
        "RelatedToId": a.account_id,
        KEY: a.key, "Winback_Kind__c": a.kind, "Winback_Owner_Id__c": a.owner_id,
        "Winback_Contact_Id__c": a.contact_id, **_provenance(a.plan_key, a.provenance),
    })


def case_body(a: CreateCase) -> dict[str, Any]:
    """A Case for a team; its owner may be a queue (one that takes Cases, checked at start-up)."""
    return _present({
        "Subject": a.subject, "Description": a.description,
        "Priority": CASE_PRIORITIES[a.priority], "Status": CASE_NEW, "OwnerId": a.owner_id,
        "AccountId": a.account_id, "ContactId": a.contact_id, KEY: a.key,
        "Winback_Kind__c": a.kind, **_provenance(a.plan_key, a.provenance),
    })


def member_body(a: AddToCampaign) -> dict[str, Any]:
    return _present({
        "CampaignId": a.campaign_id, "ContactId": a.contact_id, KEY: a.key,
        "Winback_Account_Id__c": a.account_id, **_provenance(a.plan_key, a.provenance),
    })


def _time(text: str | None) -> str | None:
    return iso(datetime.fromisoformat(text)) if text else None


def _owner(row: dict[str, Any]) -> str | None:
    # A record the worker left unassigned belongs to the integration user that created it.
    owner = row.get("OwnerId")
    return None if owner == row.get("CreatedById") else owner


def _trail(row: dict[str, Any]) -> dict[str, Any]:
    names = ("plan_key", "event_id", "rule_id", "rules_version")
    return {name: row.get(field) for name, field in zip(names, _PROVENANCE, strict=True)}


def plan_record(row: dict[str, Any]) -> Record:
    state = json.loads(row["State_Json__c"])
    return Record("plan", row[PLAN_KEY], state["account_id"], state)


def task_record(row: dict[str, Any]) -> Record:
    fields = {
        "kind": row["Winback_Kind__c"], "subject": row["Subject"],
        "description": row.get("Description") or "", "owner_id": _owner(row),
        "due_at": _time(row.get("Winback_Due_At__c")),
        "reminder_at": _time(row.get("ReminderDateTime")) if row.get("IsReminderSet") else None,
        "priority": str(row["Priority"]).lower(), "status": "done" if row.get("IsClosed") else "open",
        "contact_id": row.get("WhoId"), "completed_at": _time(row.get("CompletedDateTime")),
        **_trail(row),
    }
    return Record("task", row[KEY], row["WhatId"], fields)


def checkin_record(row: dict[str, Any]) -> Record:
    fields = {
        "slot": int(row["Winback_Slot__c"]), "subject": row["Subject"],
        "description": row.get("Description") or "", "start_at": _time(row["StartDateTime"]),
        "duration_minutes": int(row["DurationInMinutes"]), "owner_id": _owner(row),
        "contact_id": row.get("WhoId"), "status": row["Winback_Status__c"], **_trail(row),
    }
    return Record("checkin", row[KEY], row["WhatId"], fields)


def draft_record(row: dict[str, Any]) -> Record:
    fields = {
        "kind": row["Winback_Kind__c"], "subject": row["Subject"],
        "body_html": row.get("HtmlBody") or "", "body_text": row.get("TextBody") or "",
        "to_address": row.get("ToAddress"),
        "owner_id": row.get("Winback_Owner_Id__c"),
        "status": "draft" if row.get("Status") == EMAIL_DRAFT else "sent",
        "contact_id": row.get("Winback_Contact_Id__c"), **_trail(row),
    }
    return Record("email_draft", row[KEY], row["RelatedToId"], fields)


def case_record(row: dict[str, Any]) -> Record:
    priorities = {v: k for k, v in CASE_PRIORITIES.items()}
    fields = {
        "kind": row.get("Winback_Kind__c"), "subject": row["Subject"],
        "description": row.get("Description") or "", "owner_id": _owner(row),
        "priority": priorities.get(str(row.get("Priority")), "normal"),
        "status": "done" if row.get("IsClosed") else "open", "contact_id": row.get("ContactId"),
        **_trail(row),
    }
    return Record("case", row[KEY], row["AccountId"], fields)


def member_record(row: dict[str, Any]) -> Record:
    fields = {"campaign_id": row["CampaignId"], "contact_id": row.get("ContactId"), **_trail(row)}
    return Record("campaign_member", row[KEY], row["Winback_Account_Id__c"], fields)
