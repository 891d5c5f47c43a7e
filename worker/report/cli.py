"""``winback report`` and ``winback plan show``: the method's figures and one plan's timeline."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from handlers.errors import WinbackError
from handlers.figures import GroupBy, acknowledgements, compute_figures, outcomes_by_month
from worker.crm.port import Crm
from worker.report import render
from worker.report.rollups import sync_acknowledgements
from worker.report.source import read_all
from worker.settings import load_settings


@contextmanager
def _crm() -> Iterator[Crm]:
    from handlers.errors import ConfigError, WinbackError
    from worker import logs
    from worker.crm.factory import build_crm

    try:
        settings = load_settings()
        logs.configure(settings.log_format, settings.log_level)  # on stderr: stdout may be JSON
        adapter = build_crm(settings)
    except (ConfigError, WinbackError) as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(2)
    try:
        yield adapter
    finally:
        adapter.close()


@click.command("report")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, metavar="DATE",
              help="Only plans opened on or after this day (UTC).")
@click.option("--by", "by", type=click.Choice(["all", "owner", "segment", "rule"]), default="all",
              help="One column (or line) per owner, segment or opening rule.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a self-contained HTML page with charts here.")
@click.option("--sync", is_flag=True,
              help="Also write each plan's acknowledgement fields now (the worker does it every "
                   "WINBACK_FIGURES_SECONDS).")
def report(since: datetime | None, by: GroupBy, fmt: str, html_file: Path | None, sync: bool
           ) -> None:
    """Win-back outcomes, SLA attainment, check-ins and suppressions, from the plans in the CRM."""
    now = datetime.now(UTC)
    with _crm() as crm:
        plans, tasks = read_all(crm)
        if sync:
            try:
                written = sync_acknowledgements(crm, plans, tasks, now)
            except WinbackError as exc:
                click.echo(f"winback: writing the acknowledgement fields failed: {exc}", err=True)
                sys.exit(1)
            click.echo(f"acknowledgement fields written for {len(written)} plans", err=True)
    start = since.replace(tzinfo=UTC) if since else None
    rows = compute_figures(plans, tasks, now, start, by)
    period = f"plans opened since {since:%Y-%m-%d}" if since else "all plans"
    if html_file is not None:
        from worker.report.html import report_html

        html_file.write_text(report_html(rows, outcomes_by_month(plans, start), period.capitalize(), now))
        click.echo(f"wrote {html_file}", err=True)
    if fmt == "json":
        click.echo(render.figures_json(rows))
    elif fmt == "csv":
        click.echo(render.figures_csv(rows), nl=False)
    else:
        out = render.console()
        for table in render.figures_table(rows, f"Win-back figures, {period}"):
            out.print(table)


@click.group("plan")
def plan_group() -> None:
    """Look at one account's win-back plan."""


@plan_group.command("show")
@click.argument("account")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def plan_show(account: str, fmt: str) -> None:
    """The account's latest plan: its timeline, newest first (pending timers at the top, at the
    time they fire), then the timers still waiting and the breaches recorded."""
    with _crm() as crm:
        plans, tasks = read_all(crm, account)
    if not plans:
        click.echo(f"winback: no plan for account {account!r}", err=True)
        sys.exit(1)
    plan = max(plans, key=lambda p: p.seq)
    acks = acknowledgements([plan], tasks, datetime.now(UTC))[plan.key]
    if fmt == "json":
        click.echo(render.plan_json(plan, acks))
        return
    out = render.console()
    out.print(render.timeline_table(plan))
    if acks.in_sla or acks.late or acks.pending:
        out.print(render.acknowledgements_line(acks))
    for table in (render.timers_table(plan), render.breaches_table(plan)):
        if table is not None:
            out.print(table)
