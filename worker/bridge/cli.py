"""``winback bridge``: run the Pub/Sub bridge, check the sources file, explain a change."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from handlers.errors import ConfigError, WinbackError
from handlers.rules.errors import RulesInvalidError
from handlers.sources.mapping import UnmappableError, build, select, unmet
from handlers.sources.model import Source
from worker import logs
from worker.bridge.settings import BridgeSettings
from worker.settings import build_settings

SOURCES = click.Path(dir_okay=False, path_type=Path)


# The worker's settings the bridge never reads (consuming, batching, rules, the embedded CRM).
WORKER_ONLY = frozenset({"prefetch", "crm_concurrency", "batch_size", "batch_wait_ms", "grace_period",
                         "crm", "local_crm_path", "rules", "rules_poll_seconds"})
# Shared settings whose meaning differs for the bridge.
FOR_THE_BRIDGE = {
    "stall_limit": "Seconds without a turn of a topic's loop before /healthz fails.",
    "metrics_port": "Port of /metrics, /healthz and /readyz (ready: subscribed, broker connected); 0 = off.",
}


def _epilog() -> str:
    lines = ["\b", "Settings (environment variables):"]
    for name, info in BridgeSettings.model_fields.items():
        if name in WORKER_ONLY:
            continue
        default = "***" if name == "amqp_url" else info.default  # a URL may hold a password
        shown = "" if default in (None, ()) else f" [default: {default}]"
        described = FOR_THE_BRIDGE.get(name, info.description or "")
        lines.append(f"  WINBACK_{name.upper():<30} {described}{shown}")
    return "\n".join(lines)


@click.group("bridge", invoke_without_command=True, epilog=_epilog(),
             context_settings={"max_content_width": 120})
@click.pass_context
def bridge_group(ctx: click.Context) -> None:
    """Subscribe to Salesforce change events (Pub/Sub API) and publish them as CloudEvents.

    Runs until SIGTERM/SIGINT. Subcommands check the sources file or explain one change.
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        settings = build_settings(BridgeSettings)
    except ConfigError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(2)
    logs.configure(settings.log_format, settings.log_level)
    from worker.bridge.app import run_bridges
    from worker.bridge.metrics import BridgeMetrics

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run_bridges(settings, stop, BridgeMetrics())
    except (ConfigError, WinbackError) as exc:
        click.echo(f"winback: cannot start the bridge: {exc}", err=True)
        sys.exit(2)


def _sources_or_exit(file: Path) -> tuple[Source, ...]:
    from worker.bridge.app import load_sources

    try:
        return load_sources(file)
    except RulesInvalidError as exc:
        click.echo("\n".join(str(p) for p in exc.problems))
        sys.exit(1)
    except ConfigError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(1)


@bridge_group.command("check")
@click.argument("file", type=SOURCES, default=Path("config/sources.yaml"), envvar="WINBACK_BRIDGE_SOURCES")
def check(file: Path) -> None:
    """Validate the sources FILE; every problem at file:line:column. Exit 1 when invalid."""
    sources = _sources_or_exit(file)
    click.echo(f"{file}: valid, {len(sources)} source(s): " + ", ".join(s.id for s in sources))


@bridge_group.command("explain")
@click.argument("change_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sources", "file", type=SOURCES, default=Path("config/sources.yaml"),
              envvar="WINBACK_BRIDGE_SOURCES", show_default=True)
def explain(change_file: Path, file: Path) -> None:
    """What one decoded change (JSON: ChangeEventHeader plus fields, with the whole record) becomes."""
    from worker.bridge.bridge import changes

    sources = _sources_or_exit(file)
    record: dict[str, Any] = json.loads(change_file.read_text())
    for change in changes(record, "/data/ChangeEvents"):
        source = select(sources, change)
        if source is None:
            click.echo(f"{change.entity} {change.record_id}: no source picks a {change.change_type}")
            continue
        why = unmet(source, change.fields)
        if why:
            click.echo(f"{change.entity} {change.record_id}: source '{source.id}' skips it: {why}")
            continue
        try:
            event = build(source, change.fields, change, "salesforce/explain")
        except UnmappableError as exc:
            click.echo(f"unmappable: {exc}")
            sys.exit(1)
        click.echo(f"source '{source.id}' ->")
        click.echo(json.dumps(event, indent=2))
