"""The ``winback`` command: run the worker, publish events, look into the CRM, check rules."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from handlers.errors import ConfigError, WinbackError
from handlers.events import json_schemas
from worker import logs
from worker.settings import Settings, load_settings, settings_help


def _settings_epilog() -> str:
    lines = ["\b", "Settings (environment variables):"]
    for name, default, description in settings_help():
        lines.append(f"  {name:<36} {description}" + (f" [default: {default}]" if default else ""))
    return "\n".join(lines)


@click.group(epilog=_settings_epilog(), context_settings={"max_content_width": 120})
def cli() -> None:
    """winback: turns CRM events into the next step of the win-back method."""


def _settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(2)


@cli.command()
@click.option("--exit-when-idle", type=float, default=None, metavar="SECONDS",
              help="Stop once the queue has been empty and nothing in flight this long (demo, jobs).")
def run(exit_when_idle: float | None) -> None:
    """Consume events and write the next steps into the CRM until SIGTERM/SIGINT."""
    settings = _settings_or_exit()
    logs.configure(settings.log_format, settings.log_level)
    from worker.app import build_app, tune_collector
    from worker.signals import stop_on_signals

    try:
        app = build_app(settings)
    except (ConfigError, WinbackError) as exc:
        click.echo(f"winback: cannot start: {exc}", err=True)
        sys.exit(2)

    stop_on_signals(app.stop)
    tune_collector()
    try:
        app.run(exit_when_idle)
    except ConfigError as exc:
        click.echo(f"winback: cannot start: {exc}", err=True)
        sys.exit(2)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def publish(files: tuple[Path, ...]) -> None:
    """Publish event JSON files (one event, or a list of events, per file) with publisher confirms."""
    settings = _settings_or_exit()
    from worker.publisher import publish_files

    try:
        count = publish_files(settings, files)
    except (OSError, ValueError, WinbackError) as exc:
        click.echo(f"winback: publish failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"published {count} event(s) to exchange {settings.exchange!r} (confirmed)")


@cli.group()
def crm() -> None:
    """Look into the CRM the worker writes to."""


@crm.command("list")
@click.option("--account", default=None, help="Only this account id.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def crm_list(account: str | None, fmt: str) -> None:
    """Show plans, tasks, drafts and check-ins."""
    settings = _settings_or_exit()
    logs.configure(settings.log_format, settings.log_level)  # on stderr: stdout may be JSON
    from worker.crm.factory import build_crm
    from worker.crm.show import print_records

    crm_adapter = build_crm(settings)
    try:
        records = crm_adapter.records(account)
    finally:
        crm_adapter.close()
    if fmt == "json":
        click.echo(json.dumps([r.__dict__ for r in records], indent=2, default=str))
    else:
        print_records(records)


@crm.command("complete-task")
@click.argument("key")
@click.option("--at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]), default=None,
              help="When it was done, UTC [default: now].")
def crm_complete_task(key: str, at: datetime | None) -> None:
    """Mark a task done in the embedded CRM, as its owner would (in Salesforce, close it there)."""
    settings = _settings_or_exit()
    if settings.crm != "local":
        click.echo("winback: complete tasks in Salesforce itself; the worker reads them back", err=True)
        sys.exit(2)
    from worker.crm.local import LocalCrm

    local = LocalCrm(settings.local_crm_path)
    try:
        local.complete_task(key, at.replace(tzinfo=UTC) if at else datetime.now(UTC))
    except WinbackError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(1)
    finally:
        local.close()
    click.echo(f"task {key} done")


@cli.group()
def events() -> None:
    """The event contract."""


@events.command("schema")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one <type>.schema.json per event type here instead of printing.")
def events_schema(out: Path | None) -> None:
    """JSON Schemas of the three event types, generated from the models."""
    schemas = json_schemas()
    if out is None:
        click.echo(json.dumps(schemas, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for event_type, schema in schemas.items():
        (out / f"{event_type}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    click.echo(f"wrote {len(schemas)} schemas to {out}")


def _register_groups() -> None:
    from worker.bridge.cli import bridge_group
    from worker.parked_cli import parked_group
    from worker.report.cli import plan_group, report
    from worker.rules_cli import rules_group

    cli.add_command(rules_group, "rules")
    cli.add_command(parked_group, "parked")
    cli.add_command(report, "report")
    cli.add_command(plan_group, "plan")
    cli.add_command(bridge_group, "bridge")


def main() -> None:
    _register_groups()
    cli(prog_name="winback")


