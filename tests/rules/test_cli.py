"""``winback rules check | schema | explain`` as an admin and CI run them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from handlers.rules.model import schema
from tests.rules.disk import write_plain
from tests.rules.snippets import ROOT
from worker.rules_cli import rules_group

RULES = ROOT / "config" / "rules.yaml"
SAMPLES = ROOT / "config" / "samples"
DATA = Path(__file__).parent / "data"


def _run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(rules_group, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def _bad_rules(tmp_path: Path) -> Path:
    path = write_plain(tmp_path, 1, valid=False)
    path.write_text(path.read_text() + "    colour: red\n")
    return path


def test_check_passes_the_default_rules_with_exit_0() -> None:
    code, out = _run("check", RULES)
    assert code == 0
    assert out.startswith(f"{RULES}: OK, version ")


def test_check_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = _bad_rules(tmp_path)
    code, out = _run("check", path)
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{path}:6:9: unknown event type 'customer.lapsd' — did you mean 'customer.lapsed'?",
        f"{path}:11:5: unknown key 'colour' (expected one of: id, description, on, when, then, stop)",
    ]


def test_check_json_is_for_ci(tmp_path: Path) -> None:
    code, out = _run("check", _bad_rules(tmp_path), "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert report["valid"] is False
    assert report["problems"][1] == {
        "file": str(tmp_path / "rules.yaml"), "line": 11, "column": 5,
        "message": "unknown key 'colour'",
        "expected": "one of: id, description, on, when, then, stop", "suggestion": None,
    }
    code, out = _run("check", RULES, "--format", "json")
    assert code == 0
    assert json.loads(out)["problems"] == []


def test_schema_prints_the_models_json_schema_and_the_committed_copy_is_current() -> None:
    code, out = _run("schema")
    assert code == 0
    printed = json.loads(out)
    assert printed == schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    committed = json.loads((ROOT / "config" / "rules.schema.json").read_text())
    assert committed == printed, "run: winback rules schema > config/rules.schema.json"


def _explain_json(*args: str | Path) -> dict[str, Any]:
    code, out = _run("explain", *args, "--rules", RULES, "--format", "json")
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    return report


def test_explain_shows_matched_rules_and_the_exact_records_for_a_complaint() -> None:
    report = _explain_json(SAMPLES / "one" / "complaint.json")
    (event,) = report["events"]
    matched = {r["rule_id"]: r["matched"] for r in event["rules"]}
    assert matched["escalate-severe-complaints"] is True
    assert next(r["reason"] for r in event["rules"]
                if r["rule_id"] == "escalate-severe-complaints") == "severity is 'high'"
    ack = next(r for r in event["records"] if r["key"].endswith("acknowledge-within-sla:CMP-77"))
    assert ack["object"] == "task"
    assert ack["fields"]["due_at"] == "2026-11-03T10:20:00Z"  # logged 10:00, SLA 20 minutes
    assert ack["fields"]["owner_id"] == "USR-ALICE"
    assert ack["fields"]["rules_version"] == report["rules_version"]
    assert "We waited three weeks for a reply to ticket 4411" in ack["fields"]["description"]
    assert [r["object"] for r in event["records"]].count("email_draft") == 1


def test_explain_says_which_condition_failed_for_a_rule_that_did_not_match() -> None:
    report = _explain_json(SAMPLES / "one" / "lapsed.json")
    survey = next(r for r in report["events"][0]["rules"]
                  if r["rule_id"] == "survey-low-value-lapses")
    assert survey["matched"] is False
    assert survey["reason"] == ("annual_value is 48000.0, not less than 10000.0 "
                                "(setting high_value_threshold)")


def test_explain_shows_actions_suppressed_by_the_contact_budget_and_why() -> None:
    report = _explain_json(SAMPLES / "one" / "complaint.json", "--plan",
                           DATA / "plan-budget-spent.json")
    (suppressed,) = report["events"][0]["suppressed"]
    assert suppressed["action"] == "apology"
    assert suppressed["reason"].startswith("contact budget reached: 5 outreach actions")
    assert "email_draft" not in [r["object"] for r in report["events"][0]["records"]]


def test_explain_shows_do_not_contact_suppressions() -> None:
    report = _explain_json(DATA / "lapsed-do-not-contact.json")
    reasons = {(s["action"], s["reason"]) for s in report["events"][0]["suppressed"]}
    assert reasons == {("discovery", "the customer is marked do-not-contact"),
                       ("offer", "the customer is marked do-not-contact")}


def test_explain_runs_a_story_in_order_each_event_seeing_the_plan_before() -> None:
    report = _explain_json(SAMPLES / "02-northwind-story.json")
    second = report["events"][1]
    assert second["event_id"] == "evt-0011"
    assert [s["reason"] for s in second["suppressed"]] == [
        "already apologised once on this plan (ACC-1001#1:apology)"]


def test_explain_prints_tables_for_people() -> None:
    code, out = _run("explain", SAMPLES / "one" / "complaint.json", "--rules", RULES,
                     "--plan", DATA / "plan-budget-spent.json", "--now", "2026-11-03T10:05:00Z")
    assert code == 0
    for text in ("crm.complaint.logged evt-0010", "evaluated at 2026-11-03T10:05:00Z", "Rules",
                 "escalate-severe-complaints", "matched", "CRM records that would be written",
                 "Suppressed (1)", "contact budget reached"):
        assert text in out, text


def test_explain_refuses_invalid_rules_with_the_check_messages(tmp_path: Path) -> None:
    path = _bad_rules(tmp_path)
    code, out = _run("explain", SAMPLES / "one" / "lapsed.json", "--rules", path)
    assert code == 1
    assert f"{path}:6:9: unknown event type 'customer.lapsd'" in out


def test_explain_rejects_an_invalid_event_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text('{"specversion": "1.0"}')
    code, out = _run("explain", bad, "--rules", RULES)
    assert code == 2
    assert "winback: cannot read the input: not a CloudEvent" in out
