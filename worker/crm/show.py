"""Readable tables of CRM records for ``winback crm list``."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from handlers.plan import CLOSED_STAGES
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
    _timers(console, plans)


def _activities(console: Console, records: Sequence[Record]) -> None:
    rows = [r for r in records if r.kind != "plan"]
    table = Table(title=f"Tasks, drafts and check-ins ({len(rows)})", box=box.SIMPLE_HEAD)
    # One line per record however narrow the output (80 columns when piped): below 120 columns the
    # owner and rule are left out, and long subjects end in an ellipsis instead of folding into
    # fragments. ``--format json`` has every value in full.
    columns = [c for c in _ACTIVITY_COLUMNS if console.width >= 120 or c[0] not in ("owner", "rule")]
    fixed = sum(w or 0 for _, w in columns) + 2 * len(columns) + 1
    for column, width in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=width,
                         max_width=width or max(12, console.width - fixed))
    for r in rows:
        f = r.fields
        kind = f.get("kind") if r.kind == "task" else r.kind.replace("email_draft", "draft")
        values = {"account": r.account_id, "type": kind,
                  "subject": f.get("subject") or f.get("campaign_id") or "",
                  "owner": f.get("owner_id") or "",
                  "due / start (UTC)": (f.get("due_at") or f.get("start_at") or "").replace("T", " ")[:16],
                  "status": f.get("status") or "", "rule": f.get("rule_id") or ""}
        table.add_row(*(values[c] for c, _ in columns))
    console.print(table)


# Fixed widths; the subject (None) takes what is left.
_ACTIVITY_COLUMNS = (("account", 9), ("type", 14), ("subject", None), ("owner", 14),
                     ("due / start (UTC)", 17), ("status", 7), ("rule", 22))


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


def _timers(console: Console, plans: Sequence[Record]) -> None:
    """The timers still waiting per plan: what each will look at in the CRM, and when."""
    # As ``Plan.will_act``: on a closed plan only an owed acknowledgement's timer still acts.
    rows = [(p.key, t) for p in plans for t in p.fields.get("timers", []) if t["status"] == "pending"
            and (p.fields.get("stage") not in CLOSED_STAGES or t["kind"] == "unless_done")]
    if not rows:
        return
    table = Table(title=f"Timers pending ({len(rows)})", box=box.SIMPLE_HEAD)
    for column in ("plan", "checks", "unless", "fires at"):
        table.add_column(column, overflow="fold")
    for plan, t in rows:
        unless = "done" if t["kind"] == "unless_done" else "held"
        table.add_row(plan, t["step_key"], unless, str(t["due_at"]))
    console.print(table)
