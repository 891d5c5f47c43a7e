"""Readable tables of CRM records for ``winback crm list``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from worker.crm.port import Record


def print_records(records: Sequence[Record], console: Console | None = None) -> None:
    console = console or Console()
    plans = [r for r in records if r.kind == "plan"]
    table = Table(title=f"Win-back plans ({len(plans)})", show_lines=False)
    for column in ("plan", "account", "stage", "apology", "check-ins", "outcome / reason"):
        table.add_column(column)
    for r in plans:
        f = r.fields
        closing = ": ".join(v for v in (f.get("outcome"), f.get("closing_reason")) if v)
        done = sum(1 for c in f.get("checkins", []) if c["status"] == "done")
        table.add_row(r.key, f.get("account_name") or r.account_id, f["stage"], f["apology"],
                      f"{done} done / {len(f.get('checkins', []))}", closing)
    console.print(table)
    _activities(console, records)
    _suppressions(console, plans)


def _activities(console: Console, records: Sequence[Record]) -> None:
    rows = [r for r in records if r.kind != "plan"]
    table = Table(title=f"Tasks, drafts and check-ins ({len(rows)})")
    for column in ("account", "type", "subject", "owner", "due / start", "priority", "status", "rule"):
        table.add_column(column, overflow="fold")
    for r in rows:
        f = r.fields
        kind = f.get("kind") or r.kind
        subject = f.get("subject") or f.get("campaign_id") or ""
        when = f.get("due_at") or f.get("start_at") or ""
        table.add_row(r.account_id, f"{r.kind}:{kind}" if r.kind == "task" else r.kind, subject,
                      f.get("owner_id") or "", when, f.get("priority") or "", f.get("status") or "",
                      f.get("rule_id") or "")
    console.print(table)


def _suppressions(console: Console, plans: Sequence[Record]) -> None:
    rows = [(p.account_id, s) for p in plans for s in p.fields.get("suppressed", [])]
    if not rows:
        return
    table = Table(title=f"Not written, and why ({len(rows)})")
    for column in ("account", "action", "reason", "rule", "event"):
        table.add_column(column, overflow="fold")
    for account, s in rows:
        table.add_row(account, s["action"], s["reason"], s["rule_id"], s["event_id"])
    console.print(table)
