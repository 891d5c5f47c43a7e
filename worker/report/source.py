"""Plans and task views read back from any CRM adapter, in the shape the pure figures take."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handlers.figures import TaskView
from handlers.plan import Plan
from worker.crm.port import Crm, Record


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def plans_of(records: Sequence[Record]) -> list[Plan]:
    return [Plan.model_validate(r.fields) for r in records if r.kind == "plan"]


def tasks_of(records: Sequence[Record]) -> list[TaskView]:
    """Tasks with their completion time, when the CRM says one was completed."""
    return [
        TaskView(plan_key=r.fields.get("plan_key") or "", kind=r.fields.get("kind") or "",
                 rule_id=r.fields.get("rule_id") or "", due_at=_moment(r.fields.get("due_at")),
                 completed_at=_moment(r.fields.get("completed_at")))
        for r in records if r.kind == "task"
    ]


def read_all(crm: Crm, account_id: str | None = None) -> tuple[list[Plan], list[TaskView]]:
    records = crm.records(account_id)
    return plans_of(records), tasks_of(records)
