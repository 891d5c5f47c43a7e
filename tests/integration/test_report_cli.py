"""``winback report``, ``winback plan show`` and ``winback crm list`` as a person or a script sees them."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from handlers.actions import CreateTask, EventChange, Provenance, SavePlan
from handlers.figures import Acknowledgements
from tests.unit.test_figures import LOST, OPEN, T0, WON
from worker.cli import _register_groups, cli
from worker.crm.local import LocalCrm
from worker.metrics import Metrics
from worker.report.sampler import FigureSampler

_register_groups()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A local CRM holding a won, a lost and an open plan; Northwind's complaint acknowledged in time."""
    path = tmp_path / "crm.sqlite3"
    crm = LocalCrm(path)
    ack = CreateTask(key="A#1:ack", plan_key="A#1", account_id="A", kind="acknowledgement",
                     subject="Acknowledge the complaint from a customer with a long name, within 20 minutes",
                     description="", owner_id="USR-A", due_at=T0 + timedelta(minutes=20),
                     priority="high", provenance=Provenance("e2", "acknowledge-within-sla", "v1"))
    for n, plan in enumerate((WON, LOST, OPEN)):
        extra = (ack,) if plan is WON else ()
        crm.apply([EventChange(f"e{n}", "crm.customer.lapsed", plan.account_id,
                               (*extra, SavePlan(plan.model_copy(update={"revision": 1}))))])
    crm.complete_task("A#1:ack", T0 + timedelta(minutes=5))
    crm.close()
    return {"WINBACK_LOCAL_CRM_PATH": str(path), "COLUMNS": "80"}


def _run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_report_json_gives_the_figures_for_scripts(env: dict[str, str]) -> None:
    [row] = json.loads(_run(env, "report", "--format", "json"))
    got = (row["opened"], row["won"], row["lost"], row["sla_met"], row["sla_attainment"])
    assert got == (3, 1, 1, 1, 1.0)


def test_report_by_owner_as_csv_has_one_line_per_owner(env: dict[str, str]) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(env, "report", "--by", "owner", "--format", "csv"))))
    assert [(r["group"], r["opened"], r["won"]) for r in rows] == [("USR-A", "2", "1"), ("USR-B", "1", "0")]
    assert rows[1]["suppressed:contact budget spent (budget)"] == "0"


def test_report_since_a_date_leaves_earlier_plans_out(env: dict[str, str]) -> None:
    later = (T0 + timedelta(days=1)).strftime("%Y-%m-%d")
    assert json.loads(_run(env, "report", "--since", later, "--format", "json")) == []


def test_tables_fit_80_columns_when_piped(env: dict[str, str]) -> None:
    report = _run(env, "report")
    listing = _run(env, "crm", "list")
    assert max(len(line) for line in (report + listing).splitlines()) <= 80
    assert "SLA attainment" in report
    assert "100%" in report
    # One line per record: the long subject is cut, not folded onto a second line.
    [line] = [line for line in listing.splitlines() if "Acknowledge the" in line]
    assert "…" in line
    assert "done" in line


def test_plan_show_prints_the_timeline_newest_first(env: dict[str, str]) -> None:
    shown = json.loads(_run(env, "plan", "show", "A", "--format", "json"))
    assert shown["plan"] == "A#1"
    assert shown["outcome"] == "won"
    assert [(e["event_id"], e["rule_id"], e["what"]) for e in shown["timeline"]] == [
        ("e1", "method", "opened")]
    assert shown["acknowledgements"] == {"in_sla": 1, "late": 0, "pending": 0,
                                         "acknowledged_at": "2026-11-02T09:05:00+00:00"}
    table = _run(env, "plan", "show", "A")
    assert "Plan A#1" in table
    assert ("Complaints acknowledged: 1 within the SLA, 0 late, 0 not yet due; last acknowledged "
            "2026-11-02 09:05 UTC") in " ".join(table.split())


def test_plan_show_for_an_unknown_account_says_so(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["plan", "show", "NOPE"], env=env)
    assert result.exit_code == 1
    assert "no plan for account 'NOPE'" in result.output


def test_the_figures_are_sampled_into_prometheus_gauges(env: dict[str, str]) -> None:
    metrics = Metrics()
    FigureSampler(lambda: LocalCrm(env["WINBACK_LOCAL_CRM_PATH"]), metrics,
                  clock=lambda: T0 + timedelta(days=1)).sample()
    value = metrics.registry.get_sample_value
    assert [value("winback_plans", {"state": s}) for s in ("opened", "won", "lost", "open")] == [
        3, 1, 1, 1]
    assert [value("winback_complaint_acknowledgements", {"verdict": v})
            for v in ("in_sla", "late", "not_yet")] == [1, 0, 0]
    # The same sample rolled the acknowledgement up onto Northwind's plan, and only there.
    crm = LocalCrm(env["WINBACK_LOCAL_CRM_PATH"])
    try:
        assert crm.acknowledgements() == {"A#1": Acknowledgements(T0 + timedelta(minutes=5), 1, 0, 0)}
    finally:
        crm.close()


def test_report_sync_writes_the_acknowledgement_fields_once(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--sync", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert "acknowledgement fields written for 1 plans" in result.output
    again = CliRunner().invoke(cli, ["report", "--sync", "--format", "json"], env=env)
    assert "acknowledgement fields written for 0 plans" in again.output
