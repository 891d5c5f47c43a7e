"""What a person sees of the timers, both CRMs: ``winback plan show`` lists the pending ones and
the breaches, and the plan's timeline (Salesforce's ``Timeline__c`` too) says what each found and did."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from handlers.rules.ruleset import RuleSet
from tests.adapters import cli_env, open_crm, salesforce_rows
from tests.integration.broker import Names, publish, work_count
from tests.integration.harness import lapsed
from tests.sfserver.cast import OWNER, WON
from tests.timers.test_deadlines import (
    ROOT,
    RULES,
    WAIT,
    _exit_interview_a_week_ago,
    _settings,
    _tasks,
    complaint,
    worker,
)
from tests.waiting import wait_until
from worker.cli import _register_groups, cli
from worker.crm.port import Crm
from worker.rules_source import load_rules

_register_groups()
SECOND_ROUND_MINUTES = 10  # long enough that the second round is still pending when looked at


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace(f"after: {{seconds: {WAIT}}}",
                                  f"after: {{minutes: {SECOND_ROUND_MINUTES}}}"))
    return load_rules(path, ROOT / "config" / "templates")


def _show(crm: Crm, *args: str) -> str:
    result = CliRunner().invoke(cli, ["plan", "show", WON, *args], env=cli_env(crm) | {"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.stdout  # the Salesforce adapter logs its connection on stderr


def _shown(crm: Crm) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(_show(crm, "--format", "json"))
    return shown


def test_plan_show_lists_the_pending_second_round_and_the_breach_that_set_it(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)  # declares the topology
    publish(names, complaint("c1", WON, datetime.now(UTC), severity="high"))
    with worker(settings, crm, rules):
        wait_until(lambda: _tasks(crm, "escalation"), timeout=WAIT + 5, what="the first escalation")
    shown = _shown(crm)
    step = f"{WON}#1:acknowledge:C-c1"
    first, second = shown["timers"]
    assert (first["status"], second["status"], second["round"]) == ("acted", "pending", 2)
    due = datetime.fromisoformat(first["due_at"])
    assert datetime.fromisoformat(second["due_at"]) == due + timedelta(minutes=SECOND_ROUND_MINUTES)
    assert [(b["kind"], b["severity"], b["round"], b["step_key"]) for b in shown["breaches"]] == [
        ("sla", "high", 1, step)]
    # The timeline, newest first: what is still ahead on top, at the time it fires.
    top = shown["timeline"][0]
    assert (datetime.fromisoformat(top["at"]), top["event_id"], top["what"]) == (
        datetime.fromisoformat(second["due_at"]), f"timer:{step}:timer:2",
        f"timer pending: checks that {step} is done (round 2)")
    whats = [e["what"] for e in shown["timeline"]]
    assert f"SLA breach (high severity, round 1): {step} not done by {due.isoformat()}" in whats
    assert f"escalation written: {step}:late1" in whats
    table = _show(crm)
    assert "Timers pending (1)" in table
    assert "Breaches (1)" in table
    assert "acknowledgement late" in table


def test_the_salesforce_plan_timeline_field_shows_the_pending_timer(
    names: Names, tmp_path: Path, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, complaint("c1", WON, datetime.now(UTC), severity="low"))
    with open_crm("salesforce", tmp_path) as crm:  # Timeline__c is a field of Salesforce's plan
        with worker(settings, crm, rules):
            wait_until(lambda: _tasks(crm, "acknowledgement"), what="the acknowledgement task")
        (row,) = salesforce_rows(crm, "Winback_Plan__c") or []
    first_line = str(row["Timeline__c"]).splitlines()[0]
    assert first_line.endswith(f"[acknowledge] timer pending: checks that {WON}#1:acknowledge:C-c1 is done")


def test_a_missed_checkin_shows_as_a_breach_with_its_nudge(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, lapsed("l1", WON, owner_id=OWNER))
    publish(names, _exit_interview_a_week_ago(WON))
    with worker(settings, crm, rules):
        wait_until(lambda: _tasks(crm, "follow_up"), timeout=WAIT + 8, what="the nudge")
        wait_until(lambda: work_count(settings) == 0, what="the work queues to drain")
    shown = _shown(crm)
    step = f"{WON}#1:checkin:1"
    assert [(b["kind"], b["step_key"]) for b in shown["breaches"]] == [("checkin", step)]
    whats = [e["what"] for e in shown["timeline"]]
    assert any(w.startswith(f"missed check-in (1 so far): {step} not held by ") for w in whats)
    assert f"nudge written: {WON}#1:next-checkin:M-m1:missed" in whats
    assert "check-in not held" in _show(crm)


def test_crm_list_as_json_stays_json_with_the_salesforce_adapter(
    names: Names, tmp_path: Path, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, complaint("c1", WON, datetime.now(UTC), severity="low"))
    with open_crm("salesforce", tmp_path) as crm:
        with worker(settings, crm, rules):
            wait_until(lambda: _tasks(crm, "acknowledgement"), what="the acknowledgement task")
        structlog.reset_defaults()  # as in a fresh `winback` process: logging not set up yet
        result = CliRunner().invoke(cli, ["crm", "list", "--account", WON, "--format", "json"],
                                    env=cli_env(crm))
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)  # the adapter's connection line goes to stderr, not here
    assert [r["kind"] for r in records if r["kind"] == "plan"] == ["plan"]
    assert [t["status"] for r in records if r["kind"] == "plan" for t in r["fields"]["timers"]] == ["pending"]
