"""Team work to a queue: a rule writes a Case a queue owns, in every CRM."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from handlers.actions import CreateCase, EventChange
from handlers.events import parse_event
from handlers.registry import handle
from tests.adapters import salesforce_rows
from tests.queue_example import EXAMPLE_RULE, rules_with_queue_example
from tests.sfserver.cast import CASE_QUEUE, CASE_QUEUE_NAME, OWNER, WON
from worker.crm.port import Crm
from worker.rules_source import load_rules


def _critical_complaint() -> bytes:
    return (
        '{"specversion": "1.0", "id": "evt-critical", "source": "crm", '
        '"type": "crm.complaint.logged", "time": "2026-11-03T10:00:00Z", "data": {'
        f'"account_id": "{WON}", "complaint_id": "CMP-7", "logged_at": "2026-11-03T10:00:00Z", '
        f'"severity": "critical", "owner_id": "{OWNER}", "account_name": "Northwind", '
        '"summary": "Nobody answered for three days."}}'
    ).encode()


def test_a_rule_writes_a_case_owned_by_a_queue(crm: Crm, tmp_path: Path) -> None:
    rules = crm.resolve_owners(load_rules(rules_with_queue_example(tmp_path, CASE_QUEUE_NAME)))
    event = parse_event(_critical_complaint())
    outcome = handle(event, None, rules, datetime(2026, 11, 3, 10, 1, tzinfo=UTC))
    (case,) = [a for a in outcome.actions if isinstance(a, CreateCase)]
    change = EventChange(event.id, event.type, WON, outcome.actions)
    assert crm.apply([change]) == [None]
    assert crm.apply([change]) == [None]  # delivered again: still one Case
    queue = CASE_QUEUE if crm.name == "salesforce" else f"queue:{CASE_QUEUE_NAME}"
    cases = [r for r in crm.records(WON) if r.kind == "case"]
    assert [(r.key, r.fields["owner_id"], r.fields["priority"], r.fields["status"])
            for r in cases] == [(case.key, queue, "high", "open")]
    assert case.key == f"{WON}#1:{EXAMPLE_RULE}:CMP-7"
    assert cases[0].fields["subject"] == "Critical complaint from Northwind: CMP-7"
    assert cases[0].fields["rule_id"] == EXAMPLE_RULE
    rows = salesforce_rows(crm, "Case")
    if rows is not None:
        ((row),) = rows
        assert (row["OwnerId"], row["AccountId"], row["Priority"], row["Status"]) == (
            CASE_QUEUE, WON, "High", "New")
