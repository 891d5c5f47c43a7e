"""SOQL: built with format_soql only, values escaped rather than injected, result pages followed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handlers.actions import EventChange, SavePlan
from tests.salesforce.changes import lapse, plan
from tests.sfserver import salesforce_crm
from tests.sfserver.org import SfError
from tests.sfserver.soql import parse
from worker.crm.salesforce import SalesforceCrm

ADAPTER = sorted((Path(__file__).resolve().parents[2] / "worker" / "crm").glob("salesforce*.py"))


def _soql_texts(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
            word in node.value for word in ("SELECT ", " WHERE ", " FROM ")
        ):
            found.append(node)
        if isinstance(node, ast.JoinedStr) and "SELECT" in ast.unparse(node):
            found.append(node)
    return found


@pytest.mark.parametrize("module", ADAPTER, ids=lambda p: p.name)
def test_every_soql_text_in_the_adapter_is_a_format_soql_template(module: Path) -> None:
    tree = ast.parse(module.read_text())
    templates = {id(call.args[0]) for call in ast.walk(tree) if isinstance(call, ast.Call)
                 and getattr(call.func, "id", "") == "format_soql" and call.args}
    strays = [ast.unparse(n) for n in _soql_texts(tree) if id(n) not in templates]
    assert strays == [], "SOQL must be built with format_soql"


def test_account_ids_with_quotes_are_escaped_not_injected(tmp_path: Path) -> None:
    # Lenient on ids, because what is tested is the quoting of a value no real org would hold:
    # the strict org would refuse the write (MALFORMED_ID) before any query saw it.
    with salesforce_crm(tmp_path, strict_ids=False) as (_, crm):
        _quoted(crm)


def _quoted(crm: SalesforceCrm) -> None:
    odd = "001O'Brien\\"
    changes = [EventChange("evt-1", "crm.customer.lapsed", odd, (SavePlan(plan(odd)),)), lapse(1)]
    assert crm.apply(changes) == [None, None]
    assert crm.load(["x' OR Account__c != 'y"], []).plans == {}
    assert list(crm.load([odd], []).plans) == [odd]
    assert [r.key for r in crm.records(odd)] == [f"{odd}#1"]


def test_records_follow_the_result_pages_of_a_long_query(tmp_path: Path) -> None:
    with salesforce_crm(tmp_path, page_size=4) as (server, crm):
        assert crm.apply([lapse(n) for n in range(5)]) == [None] * 5
        records = crm.records()
        assert any(c.path.startswith("/services/data/v62.0/query/") for c in server.calls)
    kinds = [r.kind for r in records]
    assert (kinds.count("plan"), kinds.count("task"), kinds.count("campaign_member")) == (5, 15, 2)


@pytest.mark.parametrize(("soql", "where"), [
    ("SELECT Id FROM Task WHERE Winback_Key__c IN ('a','b\\'c')", (("Winback_Key__c", "IN", ("a", "b'c")),)),
    ("SELECT Id FROM Task WHERE WhatId = null", (("WhatId", "=", None),)),
    ("SELECT Id FROM Task WHERE Seq__c != 2 AND Id NOT IN ('x')",
     (("Seq__c", "!=", 2.0), ("Id", "NOT IN", ("x",)))),
])
def test_the_test_org_reads_the_soql_subset_the_adapter_writes(soql: str, where: object) -> None:
    assert parse(soql).where == where


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Task WHERE Name = 'x' OR Name = 'y'",
    "SELECT Id FROM Task WHERE Name = 'unterminated",
    "DELETE FROM Task",
])
def test_the_test_org_refuses_soql_it_does_not_know_as_malformed(soql: str) -> None:
    with pytest.raises(SfError, match="MALFORMED_QUERY"):
        parse(soql)
