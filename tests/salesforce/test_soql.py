"""SOQL: built with format_soql only, values escaped rather than injected, result pages followed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handlers.actions import EventChange, SavePlan
from tests.salesforce.changes import lapse, plan
from tests.sfserver import salesforce_crm
from tests.sfserver.org import SfError
from tests.sfserver.soql import parse, run
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


def test_a_query_by_a_unique_field_finds_what_a_scan_of_the_table_finds(tmp_path: Path) -> None:
    # The test org reads External IDs by their index; a query's rows and their order must be the
    # scan's whatever the conditions: missing and repeated values, other conditions beside, a
    # row written again (which moves it to the end of its table), a value no row holds.
    with salesforce_crm(tmp_path) as (server, crm):
        assert crm.apply([lapse(n) for n in range(6)]) == [None] * 6
        org = server.org
        tasks = org.rows("Task")
        moved = tasks[1]["Id"]
        with org.transaction() as tx:
            org.update(tx, "Task", moved, {"Subject": "written again"})
        keys = [row["Winback_Key__c"] for row in tasks]
        quoted = ", ".join(f"'{k}'" for k in [keys[4], keys[1], "nobody", keys[4], keys[0]])
        queries = [
            f"SELECT Id, Subject FROM Task WHERE Winback_Key__c IN ({quoted})",
            f"SELECT Id FROM Task WHERE Winback_Key__c = '{keys[2]}'",
            f"SELECT Id FROM Task WHERE Subject = 'written again' AND Winback_Key__c IN ({quoted})",
            f"SELECT Id FROM Task WHERE Winback_Key__c IN ({quoted}) ORDER BY Subject DESC",
            "SELECT Id FROM Task WHERE Winback_Key__c = 'nobody'",
            "SELECT Id FROM Task WHERE Winback_Key__c = null",
            "SELECT Id, Plan_Key__c FROM Winback_Plan__c",
        ]
        for text in queries:
            query = parse(text)
            obj = org.schema[query.sobject]
            with org.lock:
                indexed = run(query, org.candidates(obj, query.where), set(obj.fields))
                scanned = run(query, list(org.tables[obj.name].values()), set(obj.fields))
            assert indexed == scanned, text
        first = parse(queries[0])
        found = org.candidates(org.schema["Task"], first.where)
        assert [row["Id"] for row in found] == [tasks[0]["Id"], tasks[4]["Id"], moved]
