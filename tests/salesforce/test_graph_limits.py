"""Composite graph limits: the test org refuses what Salesforce refuses, and requests are filled
right up to those limits (75 graphs, 500 nodes, 15 different nodes per request), never over."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.errors import CrmRejectedError
from tests.salesforce.changes import account_id
from tests.sfserver import SalesforceServer
from worker.crm import salesforce_records as sf
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_graph import MAX_GRAPHS, MAX_NODE_KINDS, MAX_NODES, Graph, pack

BASE = "/services/data/v62.0/sobjects"


def _node(graph: int, n: int, sobject: str) -> dict[str, Any]:
    body = sf.ledger_body(f"limit-{graph}-{n}", "limit.test", account_id(graph))
    return {"method": "POST", "url": f"{BASE}/{sobject}", "referenceId": f"n{n}", "body": body}


def _graph(index: int, nodes: int, sobject: str = sf.LEDGER) -> Graph:
    return Graph(index, f"e{index}", tuple(_node(index, n, sobject) for n in range(nodes)))


@pytest.mark.parametrize(("graphs", "problem"), [
    ([_graph(i, 1) for i in range(MAX_GRAPHS + 1)], "at most 75 graphs"),
    ([_graph(0, 250), _graph(1, 251)], "at most 500 nodes"),
    ([_graph(i, 1, f"Object{i}__c") for i in range(MAX_NODE_KINDS + 1)], "at most 15 different"),
], ids=["76-graphs", "501-nodes", "16-node-kinds"])
def test_the_test_org_refuses_a_request_over_a_graph_limit(
    server: SalesforceServer, crm: SalesforceCrm, graphs: list[Graph], problem: str
) -> None:
    with pytest.raises(CrmRejectedError, match=problem):
        crm.client.rest("POST", "composite/graph", {"graphs": [g.payload() for g in graphs]})


def test_the_test_org_takes_a_request_at_every_limit(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    graphs = [_graph(i, 6) for i in range(MAX_GRAPHS - 1)] + [_graph(MAX_GRAPHS, 56)]
    assert sum(len(g.nodes) for g in graphs) == MAX_NODES
    reply = crm.client.rest("POST", "composite/graph", {"graphs": [g.payload() for g in graphs]})
    assert all(g["isSuccessful"] for g in reply["graphs"])


def test_requests_are_filled_to_500_nodes_without_splitting_a_graph() -> None:
    requests = list(pack([_graph(i, 8) for i in range(200)]))  # 1,600 nodes
    assert [sum(len(g.nodes) for g in r) for r in requests] == [496, 496, 496, 112]


def test_requests_hold_at_most_75_graphs() -> None:
    requests = list(pack([_graph(i, 2) for i in range(200)]))
    assert [len(r) for r in requests] == [75, 75, 50]


def test_a_graph_that_would_make_a_16th_node_kind_starts_a_new_request() -> None:
    graphs = [_graph(i, 1, f"Object{i}__c") for i in range(MAX_NODE_KINDS + 1)]
    assert [len(r) for r in pack(graphs)] == [MAX_NODE_KINDS, 1]
