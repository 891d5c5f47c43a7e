"""Three accounts' stories through the method, as events: one won back, two let go.

Northwind is won back (one check-in held a day early, so it moves in the calendar); Tailspin is
lost after three check-ins without movement, then complains within the cool-off: acknowledged
and escalated, no new plan and no apology; Fabrikam declines, and its check-in is cancelled.
"""

from __future__ import annotations

from typing import Any

from tests.sfserver.cast import CONTACT, DECLINED, LOST, OWNER, WON
from worker.crm.port import Record


def _event(n: int, event_type: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"story-{n:02d}", "source": "crm/story", "type": event_type,
            "time": time, "datacontenttype": "application/json", "data": data}


def _meeting(n: int, account: str, day: str, kind: str, sentiment: int, **more: Any) -> dict[str, Any]:
    held = f"{day}T14:00:00Z"
    return _event(n, "crm.meeting.held", held, {
        "account_id": account, "meeting_id": f"MTG-{n}", "held_at": held, "kind": kind,
        "owner_id": OWNER, "sentiment": sentiment, **more})


__all__ = ["DECLINED", "LOST", "STORY", "WON", "summary"]

STORY: list[dict[str, Any]] = [
    _event(1, "crm.customer.lapsed", "2026-11-02T09:00:00Z", {
        "account_id": WON, "account_name": "Northwind", "lapsed_at": "2026-11-01", "owner_id": OWNER,
        "contact_id": CONTACT, "contact_email": "dana@northwind.example", "annual_value": 48000}),
    _event(2, "crm.complaint.logged", "2026-11-03T10:00:00Z", {
        "account_id": WON, "complaint_id": "CMP-1", "logged_at": "2026-11-03T10:00:00Z",
        "severity": "high", "owner_id": OWNER, "contact_id": CONTACT,
        "summary": "We waited three weeks for a reply to ticket 4411."}),
    _event(3, "crm.complaint.logged", "2026-11-05T15:30:00Z", {
        "account_id": WON, "complaint_id": "CMP-2", "logged_at": "2026-11-05T15:30:00Z",
        "severity": "low", "owner_id": OWNER, "summary": "The invoice still charges cancelled seats."}),
    _meeting(4, WON, "2026-11-09", "exit_interview", -1,
             desired_result="Renews in Q1", current_beliefs=["Support ignores us"],
             target_beliefs=["Support answers in 20 minutes"],
             new_experiences=["Named support engineer"], feedback=["Per-region status page"]),
    _meeting(5, WON, "2026-11-15", "check_in", -1),  # booked for 2026-11-16: held a day early
    _meeting(6, WON, "2026-12-09", "check_in", 1),
    _meeting(7, WON, "2027-01-08", "check_in", 2, outcome="revived"),
    _event(8, "crm.customer.lapsed", "2026-11-02T09:30:00Z", {
        "account_id": LOST, "account_name": "Tailspin", "lapsed_at": "2026-11-01", "owner_id": OWNER,
        "annual_value": 15000}),
    _meeting(9, LOST, "2026-11-06", "exit_interview", -1),
    _meeting(10, LOST, "2026-11-13", "check_in", -1),
    _meeting(11, LOST, "2026-12-06", "check_in", -1),
    _meeting(12, LOST, "2027-01-05", "check_in", -2),
    _meeting(13, LOST, "2027-02-04", "check_in", 0),  # after the plan is lost: no outreach
    _event(17, "crm.complaint.logged", "2027-02-10T09:00:00Z", {  # in the cool-off: let them go
        "account_id": LOST, "complaint_id": "CMP-3", "logged_at": "2027-02-10T09:00:00Z",
        "severity": "high", "owner_id": OWNER,
        "summary": "Your renewal reminder went to a contact who left in 2025."}),
    _event(14, "crm.customer.lapsed", "2026-11-02T10:00:00Z", {
        "account_id": DECLINED, "account_name": "Fabrikam", "lapsed_at": "2026-11-01",
        "owner_id": OWNER, "annual_value": 900}),
    _meeting(15, DECLINED, "2026-11-10", "exit_interview", 0),
    _meeting(16, DECLINED, "2026-11-12", "catch_up", -1, outcome="declined"),
]


def summary(records: list[Record]) -> list[tuple[str, ...]]:
    """Each record as (kind, what, key, owner, status, event), for exact comparison."""
    out = []
    for r in records:
        f = r.fields
        if r.kind == "plan":
            out.append(("plan", f["stage"], r.key, f.get("outcome") or "", f["apology"], ""))
            continue
        what = f.get("kind") or r.kind
        out.append((r.kind, what, r.key, f.get("owner_id") or "", f.get("status") or "",
                    f.get("event_id") or ""))
    return out
