"""``winback rules``: check the rules file, print its JSON Schema, and dry-run events against it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from handlers.actions import (
    Action,
    AddToCampaign,
    CreateCase,
    CreateTask,
    DraftEmail,
    PublishEvent,
    SavePlan,
    ScheduleCheckIn,
    SetCheckInStatus,
)
from handlers.errors import InvalidEventError, PermanentError, WinbackError
from handlers.events import Event, parse_event
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.registry import handle
from handlers.rules.errors import RulesInvalidError
from handlers.rules.model import schema
from handlers.rules.ruleset import RuleSet
from worker.crm.records import (
    campaign_fields,
    case_fields,
    checkin_fields,
    draft_fields,
    iso,
    task_fields,
)
from worker.rules_source import load_rules

RULES_FILE = click.Path(dir_okay=False, path_type=Path)
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                      show_default=True, help="text for people, json for CI.")
TEMPLATES = click.option("--templates", "templates_dir", default=None, help="Templates directory "
                         "[default: templates/ beside the rules file].",
                         type=click.Path(file_okay=False, path_type=Path))


@click.group("rules")
def rules_group() -> None:
    """Check the admin rules, print their JSON Schema, or explain what an event would do."""


def _console() -> Console:
    # Piped output (CI logs, files) gets room for the description column instead of 80 columns.
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


@rules_group.command("check")
@click.argument("file", type=RULES_FILE, default=Path("config/rules.yaml"), envvar="WINBACK_RULES")
@TEMPLATES
@FORMAT
@click.option("--crm", "crm_kind", type=click.Choice(["salesforce"]), default=None,
              help="Also look up every owner and campaign the rules name in this CRM (its "
              "WINBACK_SALESFORCE_* settings); exit 2 when one is missing or of the wrong kind.")
def check(file: Path, templates_dir: Path | None, fmt: str, crm_kind: str | None) -> None:
    """Validate FILE (default config/rules.yaml) and every template it uses; report all problems.

    Exit code 0 when valid, 1 when not, 2 when --crm finds an owner or campaign it lacks.
    """
    try:
        rules = load_rules(file, templates_dir)
    except RulesInvalidError as exc:
        if fmt == "json":
            click.echo(json.dumps({"file": str(file), "valid": False,
                                   "problems": [p.to_dict() for p in exc.problems]}, indent=2))
        else:
            click.echo("\n".join(str(p) for p in exc.problems))
            count = len(exc.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''}: the rules were not loaded",
                       err=True)
        sys.exit(1)
    if crm_kind is not None:
        _check_references(rules)
    by_event = {r.on: sum(1 for x in rules.file.rules if x.on == r.on) for r in rules.file.rules}
    if fmt == "json":
        click.echo(json.dumps({"file": str(file), "valid": True, "version": rules.version,
                               "rules": by_event, "problems": []}, indent=2))
        return
    counts = ", ".join(f"{n} for {on}" for on, n in by_event.items())
    click.echo(f"{file}: OK, version {rules.version}: {len(rules.file.rules)} rules ({counts}), "
               f"{len(rules.templates.sources)} templates")


def _check_references(rules: RuleSet) -> None:
    """Log in to the CRM the settings name and look up what the rules refer to, as start-up does."""
    from worker.crm.factory import build_crm  # only here: the plain check needs no CRM settings
    from worker.settings import load_settings

    try:
        crm = build_crm(load_settings(crm="salesforce"))
        try:
            crm.check()
            crm.resolve_owners(rules)
        finally:
            crm.close()
    except WinbackError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(2)


@rules_group.command("schema")
def print_schema() -> None:
    """Print the JSON Schema of the rules file (for editors and CI).

    winback rules schema > config/rules.schema.json
    """
    click.echo(json.dumps(schema(), indent=2))


def _read_events(path: Path) -> list[Event]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    items = raw if isinstance(raw, list) else [raw]
    return [parse_event(json.dumps(item)) for item in items]


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-03T10:00:00Z", param_hint="--now")
    return moment


@rules_group.command("explain")
@click.argument("event_files", metavar="EVENT.json...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", "plan_file", metavar="PLAN.json", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The account's win-back plan as it is now (JSON); none when left out.")
@click.option("--now", "now_text", metavar="ISO", default=None,
              help="The time to evaluate at [default: the event's time, else now].")
@click.option("--rules", "rules_file", type=RULES_FILE, default=Path("config/rules.yaml"),
              envvar="WINBACK_RULES", show_default=True, help="The rules file.")
@TEMPLATES
@FORMAT
def explain(event_files: tuple[Path, ...], plan_file: Path | None, now_text: str | None, rules_file: Path,
            templates_dir: Path | None, fmt: str) -> None:
    """Dry run: which rules match EVENT.json and why, and the CRM records that would be written.

    Touches neither the broker nor the CRM. Each file holds one event or a list; all run in
    order, each event seeing the plan the one before left for its account.
    """
    try:
        rules = load_rules(rules_file, templates_dir)
    except RulesInvalidError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    try:
        events = [e for path in event_files for e in _read_events(path)]
        plan = Plan.model_validate_json(plan_file.read_text()) if plan_file else None
    except (OSError, ValueError, InvalidEventError, PermanentError) as exc:
        click.echo(f"winback: cannot read the input: {exc}", err=True)
        sys.exit(2)
    now = _parse_now(now_text)
    try:
        results = _run(events, plan, rules, now)
    except PermanentError as exc:
        click.echo(f"winback: the rules cannot handle this event: {exc}", err=True)
        sys.exit(1)
    if fmt == "json":
        click.echo(json.dumps({"rules_file": str(rules_file), "rules_version": rules.version,
                               "events": [_as_json(e, n, o) for e, n, o in results]}, indent=2))
        return
    console = _console()
    for event, moment, outcome in results:
        _print_outcome(console, event, moment, outcome, rules)


def _run(events: Sequence[Event], plan: Plan | None, rules: RuleSet, now: datetime | None
         ) -> list[tuple[Event, datetime, Outcome]]:
    plans: dict[str, Plan] = {plan.account_id: plan} if plan else {}
    results = []
    for event in events:
        moment = now or event.time or datetime.now(UTC)
        outcome = handle(event, plans.get(event.account_id), rules, moment)
        if outcome.plan is not None:
            plans[event.account_id] = outcome.plan  # the next event sees what this one left
        results.append((event, moment, outcome))
    return results


def records(actions: Sequence[Action]) -> list[dict[str, Any]]:
    """The CRM records the actions would write, shaped as ``winback crm list`` shows them."""
    out: list[dict[str, Any]] = []
    for a in actions:
        if isinstance(a, SetCheckInStatus):
            out += [_record("checkin", key, a.account_id, {
                "status": a.status, "reason": a.reason, "rule_id": a.provenance.rule_id,
                "rules_version": a.provenance.rules_version}) for key in a.keys]
        elif isinstance(a, SavePlan):
            out.append(_record("plan", a.plan.key, a.plan.account_id,
                               a.plan.model_dump(mode="json")))
        elif isinstance(a, PublishEvent) and a.due_at is not None:
            data = a.payload["data"]
            out.append(_record("timer", a.key, str(data["account_id"]), {
                "due_at": iso(a.due_at), "kind": data["kind"], "step_key": data["step_key"],
                "round": data["round"], "rule_id": a.provenance.rule_id,
                "rules_version": a.provenance.rules_version}))
        elif isinstance(a, PublishEvent):
            out.append(_record("published_event", a.key, str(a.payload.get("account_id", "")), {
                "routing_key": a.routing_key, "payload": a.payload,
                "rule_id": a.provenance.rule_id, "rules_version": a.provenance.rules_version}))
        else:
            out.append(_fields(a))
    return out


def _who(a: CreateTask | DraftEmail | ScheduleCheckIn | CreateCase) -> str | None:
    """The owner as far as the rules can tell; the CRM follows a relation when it writes."""
    if a.assign == "account_owner_manager":
        return f"manager of {a.owner_id or 'the account owner'}"
    return "the account owner" if a.assign else a.owner_id


def _fields(a: CreateTask | DraftEmail | ScheduleCheckIn | AddToCampaign | CreateCase
            ) -> dict[str, Any]:
    if not isinstance(a, AddToCampaign) and a.assign:
        a = replace(a, owner_id=_who(a))
    if isinstance(a, CreateCase):
        return _record("case", a.key, a.account_id, case_fields(a))
    if isinstance(a, CreateTask):
        return _record("task", a.key, a.account_id, task_fields(a))
    if isinstance(a, DraftEmail):
        return _record("email_draft", a.key, a.account_id, draft_fields(a))
    if isinstance(a, ScheduleCheckIn):
        return _record("checkin", a.key, a.account_id, checkin_fields(a))
    return _record("campaign_member", a.key, a.account_id, campaign_fields(a))


def _record(kind: str, key: str, account_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"object": kind, "key": key, "account_id": account_id, "fields": fields}


def _as_json(event: Event, now: datetime, outcome: Outcome) -> dict[str, Any]:
    return {
        "event_id": event.id, "type": event.type, "account_id": event.account_id, "now": iso(now),
        "rules": [asdict(t) for t in outcome.trace],
        "records": records(outcome.actions),
        "suppressed": [s.model_dump(mode="json") for s in outcome.suppressed],
    }


def _verdict(matched: bool, stopped: bool, skipped: bool) -> str:
    if skipped:
        return "[dim]skipped[/]"
    if matched:
        return "[green]matched[/]" + (" [bold](stop)[/]" if stopped else "")
    return "[yellow]no match[/]"


def _summary(record: dict[str, Any], event: Event) -> tuple[str, str, str, str, str]:
    """owner, due, subject, description, rule of one record, for the table."""
    f = record["fields"]
    if record["object"] == "plan":
        changes = [h["what"] for h in f.get("history", []) if h.get("event_id") == event.id]
        return (f.get("owner_id") or "", "", f"stage: {f.get('stage')}", "; ".join(changes),
                "")
    if record["object"] == "timer":
        what = "task closed" if f["kind"] == "unless_done" else "check-in held"
        return ("", f["due_at"], f"timer: fires at {f['due_at']}",
                f"checks {f['step_key']} in the CRM; acts unless {what}", f["rule_id"])
    if record["object"] == "published_event":
        return "", "", f["routing_key"], json.dumps(f["payload"]), f["rule_id"]
    text = f.get("description") or f.get("body_text") or f.get("reason") or ""
    subject = f.get("subject") or f.get("campaign_id") or ""
    due = f.get("due_at") or f.get("start_at") or ""
    return f.get("owner_id") or "", due, subject, text, f.get("rule_id") or ""


def _print_outcome(console: Console, event: Event, now: datetime, outcome: Outcome,
                   rules: RuleSet) -> None:
    console.rule(f"{event.type} {event.id} · account {event.account_id}")
    console.print(f"rules {rules.version} ({rules.source}) · evaluated at {iso(now)}")
    trace = Table(title="Rules", title_justify="left")
    for column in ("rule", "result", "why"):
        trace.add_column(column, overflow="fold")
    for t in outcome.trace:
        trace.add_row(t.rule_id, _verdict(t.matched, t.stopped, t.skipped), t.reason)
    console.print(trace)
    written = records(outcome.actions)
    table = Table(title=f"CRM records that would be written ({len(written)})",
                  title_justify="left", expand=True, show_lines=True)
    for column, ratio in (("object", 2), ("key", 3), ("owner", 2), ("due", 3), ("subject", 4),
                          ("description", 8), ("rule", 3)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for record in written:
        owner, due, subject, text, rule = _summary(record, event)
        table.add_row(record["object"], record["key"], owner, due, subject, text, rule)
    console.print(table)
    if outcome.suppressed:
        held = Table(title=f"Suppressed ({len(outcome.suppressed)})", title_justify="left",
                     expand=True)
        for column in ("action", "key", "rule", "reason"):
            held.add_column(column, overflow="fold")
        for s in outcome.suppressed:
            held.add_row(s.action, s.key, s.rule_id, s.reason)
        console.print(held)
    else:
        console.print("Suppressed: nothing")
