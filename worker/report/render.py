"""The figures as a table that fits 80 columns, as JSON for scripts, or as CSV for a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from handlers.figures import Acknowledgements, Figures
from handlers.plan import Plan
from handlers.timeline import timeline


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# One row per figure and one column per group keeps the table narrow however many figures there are.
ROWS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("plans opened", lambda f: str(f.opened)),
    ("won", lambda f: str(f.won)),
    ("lost", lambda f: str(f.lost)),
    ("open", lambda f: ", ".join(f"{n} {s}" for s, n in f.open_by_stage.items()) or "0"),
    ("win-back rate (of closed)", lambda f: _share(f.win_rate)),
    ("days to win (median)", lambda f: _number(f.days_to_win)),
    ("hours to first contact", lambda f: _number(f.hours_to_first_contact)),
    ("complaints acked in SLA", lambda f: str(f.sla_met)),
    ("complaints acked late", lambda f: str(f.sla_late)),
    ("complaints not yet acked", lambda f: str(f.sla_not_yet)),
    ("SLA attainment", lambda f: _share(f.sla_attainment)),
    ("check-ins held / scheduled", lambda f: f"{f.checkins_held} / {f.checkins_scheduled}"),
    ("check-ins with movement", lambda f: _share(f.movement_share)),
)


def figures_table(rows: Sequence[Figures], title: str) -> list[Table]:
    table = Table(title=title)
    table.add_column("figure", no_wrap=True)
    for f in rows:
        table.add_column(f.group, justify="right", overflow="fold")
    for label, value in ROWS:
        table.add_row(label, *(value(f) for f in rows))
    tables = [table]
    reasons = sorted({reason for f in rows for reason in f.suppressions})
    if reasons:
        suppressed = Table(title="Suppressed, by reason (rule)")
        suppressed.add_column("reason (rule)", overflow="fold")
        for f in rows:
            suppressed.add_column(f.group, justify="right", overflow="fold")
        for reason in reasons:
            suppressed.add_row(reason, *(str(f.suppressions.get(reason, 0)) for f in rows))
        tables.append(suppressed)
    return tables


def figures_dicts(rows: Sequence[Figures]) -> list[dict[str, Any]]:
    return [asdict(f) | {"sla_attainment": f.sla_attainment} for f in rows]


def figures_json(rows: Sequence[Figures]) -> str:
    return json.dumps(figures_dicts(rows), indent=2)


def figures_csv(rows: Sequence[Figures]) -> str:
    """One line per group; stages and suppression reasons become columns of their own."""
    flat: list[dict[str, Any]] = []
    for d in figures_dicts(rows):
        stages, reasons = d.pop("open_by_stage"), d.pop("suppressions")
        flat.append(d | {f"open:{k}": v for k, v in stages.items()}
                    | {f"suppressed:{k}": v for k, v in reasons.items()})
    columns = list(dict.fromkeys(k for row in flat for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, restval=0, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


def timeline_table(plan: Plan) -> Table:
    closing = f", {plan.outcome}: {plan.closing_reason}" if plan.outcome else ""
    table = Table(title=f"Plan {plan.key} ({plan.account_name or plan.account_id}): "
                        f"{plan.stage}{closing}, newest first")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("event", overflow="fold")
    table.add_column("rule", overflow="fold")
    table.add_column("what", overflow="fold", ratio=1)
    for e in timeline(plan):
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", e.event_id, e.rule_id, e.what)
    return table


def acknowledgements_line(acks: Acknowledgements) -> str:
    last = f"; last acknowledged {acks.acknowledged_at:%Y-%m-%d %H:%M} UTC" if acks.acknowledged_at else ""
    return (f"Complaints acknowledged: {acks.in_sla} within the SLA, {acks.late} late, "
            f"{acks.pending} not yet due{last}")


def timers_table(plan: Plan) -> Table | None:
    """The plan's timers still waiting: what each will look at in the CRM, and when."""
    pending = plan.waiting_timers
    if not pending:
        return None
    table = Table(title=f"Timers pending ({len(pending)})")
    for column in ("fires at (UTC)", "checks", "unless", "round", "rule"):
        table.add_column(column, overflow="fold")
    for t in sorted(pending, key=lambda t: t.due_at):
        table.add_row(f"{t.due_at:%Y-%m-%d %H:%M:%S}", t.step_key,
                      "done" if t.kind == "unless_done" else "held", str(t.round), t.rule_id)
    return table


def breaches_table(plan: Plan) -> Table | None:
    """Promises the plan did not keep: acknowledgements past their deadline, check-ins not held."""
    if not plan.breaches:
        return None
    table = Table(title=f"Breaches ({len(plan.breaches)})")
    for column in ("due (UTC)", "what", "severity", "round", "step"):
        table.add_column(column, overflow="fold")
    for b in plan.breaches:
        what = "acknowledgement late" if b.kind == "sla" else "check-in not held"
        table.add_row(f"{b.at:%Y-%m-%d %H:%M:%S}", what, b.severity or "-", str(b.round), b.step_key)
    return table


def plan_json(plan: Plan, acks: Acknowledgements) -> str:
    """The plan, how its complaints were acknowledged, its timeline, and every timer (pending or
    how it ended) and breach, for scripts."""
    at = acks.acknowledged_at.isoformat() if acks.acknowledged_at else None
    return json.dumps({
        "plan": plan.key, "stage": plan.stage, "outcome": plan.outcome,
        "acknowledgements": {"in_sla": acks.in_sla, "late": acks.late, "pending": acks.pending,
                             "acknowledged_at": at},
        "timeline": [{"at": e.at.isoformat(), "event_id": e.event_id, "rule_id": e.rule_id,
                      "what": e.what} for e in timeline(plan)],
        "timers": [t.model_dump(mode="json") for t in plan.timers],
        "breaches": [b.model_dump(mode="json") for b in plan.breaches],
    }, indent=2)


def console() -> Console:
    """A console 80 wide when piped (rich's default), the terminal's width otherwise or $COLUMNS."""
    return Console(soft_wrap=False)
