"""Salesforce's REST resources over the test org: sobjects, describe, query, composite, graph."""

from __future__ import annotations

import itertools
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.sfserver import soql
from tests.sfserver.org import HALTED_MESSAGE, ID_PATTERN, Org, SfError, Transaction, not_found
from tests.sfserver.schema import SObject

_VERSION_OBJECT = itemgetter(3, 5)  # /services/data/<version>/sobjects/<object>/...

MAX_SUBREQUESTS, MAX_GRAPHS, MAX_NODES, MAX_NODE_TYPES, MAX_GRAPH_FAILURES = 25, 75, 500, 15, 14
Reply = tuple[int, Any]


def _halted() -> dict[str, Any]:
    return {"body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED_MESSAGE}],
            "httpHeaders": {}, "httpStatusCode": 400}


class _NodeFailed(Exception):
    def __init__(self, index: int, status: int, body: Any) -> None:
        super().__init__(f"node {index} failed")
        self.index, self.status, self.body = index, status, body


def _check_ids(query: soql.Query, obj: SObject) -> None:
    """Salesforce refuses a whole query when one value compared with an id field is not an id."""
    for name, _, value in query.where:
        field = obj.fields.get(name)
        values = value if isinstance(value, tuple) else (value,)
        if field is not None and field.type in ("id", "reference"):
            for one in values:
                if one is not None and not ID_PATTERN.match(str(one)):
                    raise SfError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {one}")


class Rest:
    """Routes ``/services/data/vXX.X/...`` requests; every reply is ``(status, json body)``."""

    def __init__(self, org: Org, version: str, page_size: int = 2000) -> None:
        self.org = org
        self.base = f"/services/data/v{version}"
        self.page_size = page_size
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def handle(self, method: str, url: str, body: Any, tx: Transaction | None = None) -> Reply:
        parts = urlsplit(url)
        if not parts.path.startswith(self.base + "/"):
            return 404, not_found().body()
        path = [unquote(p) for p in parts.path[len(self.base) + 1:].strip("/").split("/")]
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            return self._route(method, path, params, body, tx)
        except SfError as exc:
            return exc.status, exc.body()

    def _route(self, method: str, path: list[str], params: dict[str, str], body: Any,
               tx: Transaction | None) -> Reply:
        match (method, path):
            case ("GET", ["sobjects", name, "describe"]):
                return 200, self.org.sobject(name).describe()
            case ("GET", ["query"]):
                return 200, self.query(params.get("q", ""))
            case ("GET", ["query", cursor]):
                return 200, self._page(cursor)
            case ("POST", ["composite"]):
                return self.composite(body)
            case ("POST", ["composite", "graph"]):
                return self.graph(body)
            case ("GET", ["sobjects", name, record_id]):
                return 200, self._row(name, self.org.get(name, record_id))
            case ("POST" | "PATCH", ["sobjects", *_]):
                return self._write(method, path[1:], body or {}, tx)
        return 404, not_found().body()

    def _write(self, method: str, path: list[str], body: dict[str, Any],
               tx: Transaction | None) -> Reply:
        if tx is None:
            with self.org.transaction() as own:
                return self._write(method, path, body, own)
        match (method, path):
            case ("POST", [name]):
                record_id = self.org.create(tx, name, body)
                return 201, {"id": record_id, "success": True, "errors": []}
            case ("PATCH", [name, record_id]):
                self.org.update(tx, name, record_id, body)
                return 204, None
            case ("PATCH", [name, key_field, key]):
                record_id, created = self.org.upsert(tx, name, key_field, key, body)
                return (201 if created else 200), {"id": record_id, "success": True, "errors": [],
                                                   "created": created}
        return 404, not_found().body()

    def _row(self, name: str, row: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base}/sobjects/{name}/{row.get('Id')}"
        return {"attributes": {"type": name, "url": url}, **row}

    def query(self, text: str) -> dict[str, Any]:
        parsed = soql.parse(text)
        if parsed.sobject not in self.org.schema:
            raise SfError(400, "INVALID_TYPE", f"sObject type '{parsed.sobject}' is not supported.")
        obj = self.org.schema[parsed.sobject]
        if self.org.strict_ids:
            _check_ids(parsed, obj)
        with self.org.lock:  # run reads the rows in place (no copy of a row per query)
            rows = soql.run(parsed, self.org.candidates(obj, parsed.where), set(obj.fields))
        records = [{"attributes": {"type": obj.name, "url": f"{self.base}/sobjects/{obj.name}/"
                                   f"{row.get('Id', '')}"}, **row} for row in rows]
        return self._first_page(records)

    def _first_page(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        page, rest = records[:self.page_size], records[self.page_size:]
        reply: dict[str, Any] = {"totalSize": len(records), "done": not rest, "records": page}
        if rest:
            cursor = f"01gTEST{next(self._ids):08d}-{self.page_size}"
            self._cursors[cursor] = rest
            reply["nextRecordsUrl"] = f"{self.base}/query/{cursor}"
        return reply

    def _page(self, cursor: str) -> dict[str, Any]:
        records = self._cursors.pop(cursor, None)
        if records is None:
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._first_page(records) | {"totalSize": len(records)}

    def composite(self, body: dict[str, Any]) -> Reply:
        subrequests = body.get("compositeRequest", [])
        if len(subrequests) > MAX_SUBREQUESTS:
            raise SfError(400, "LIMIT_EXCEEDED", f"Composite request has {len(subrequests)} "
                          f"subrequests; the maximum is {MAX_SUBREQUESTS}")
        if body.get("allOrNone"):
            return 200, {"compositeResponse": self._all_or_none(subrequests)}
        results = []
        for sub in subrequests:
            status, reply = self.handle(sub["method"], sub["url"], sub.get("body"))
            results.append({"body": reply, "httpHeaders": {}, "httpStatusCode": status,
                            "referenceId": sub["referenceId"]})
        return 200, {"compositeResponse": results}

    def _all_or_none(self, subrequests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            return self._transaction(subrequests)
        except _NodeFailed as failed:
            return self._failed(subrequests, failed)

    def _transaction(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.org.transaction() as tx:
            results = []
            for index, node in enumerate(nodes):
                status, reply = self.handle(node["method"], node["url"], node.get("body"), tx)
                if status >= 400:
                    raise _NodeFailed(index, status, reply)
                results.append({"body": reply, "httpHeaders": {}, "httpStatusCode": status,
                                "referenceId": node["referenceId"]})
            return results

    def _failed(self, nodes: list[dict[str, Any]], failed: _NodeFailed) -> list[dict[str, Any]]:
        results = []
        for index, node in enumerate(nodes):
            result = _halted() if index != failed.index else {
                "body": failed.body, "httpHeaders": {}, "httpStatusCode": failed.status}
            results.append(result | {"referenceId": node["referenceId"]})
        return results

    def graph(self, body: dict[str, Any]) -> Reply:
        graphs = body.get("graphs", [])
        self._check_graph_limits(graphs)
        failures, out = 0, []
        for graph in graphs:
            nodes = graph["compositeRequest"]
            if failures >= MAX_GRAPH_FAILURES:
                results = [_halted() | {"referenceId": n["referenceId"]} for n in nodes]
                out.append({"graphId": graph["graphId"], "isSuccessful": False,
                            "graphResponse": {"compositeResponse": results}})
                continue
            try:
                results, ok = self._transaction(nodes), True
            except _NodeFailed as failed:
                results, ok = self._failed(nodes, failed), False
                failures += 1
            out.append({"graphId": graph["graphId"], "isSuccessful": ok,
                        "graphResponse": {"compositeResponse": results}})
        return 200, {"graphs": out}

    def _check_graph_limits(self, graphs: list[dict[str, Any]]) -> None:
        nodes = [n for g in graphs for n in g["compositeRequest"]]
        # Different nodes differ in method, API version or object (/services/data/vXX.X/sobjects/X).
        kinds = {(n["method"], *_VERSION_OBJECT(n["url"].partition("?")[0].split("/", 6)))
                 for n in nodes}
        ids = [g["graphId"] for g in graphs]
        for problem, bad in (
            (f"at most {MAX_GRAPHS} graphs per request", len(graphs) > MAX_GRAPHS),
            (f"at most {MAX_NODES} nodes per request", len(nodes) > MAX_NODES),
            (f"at most {MAX_NODE_TYPES} different nodes per request", len(kinds) > MAX_NODE_TYPES),
            ("graph ids must be unique", len(set(ids)) != len(ids)),
            ("graphs may use only sObject resources",
             any("/sobjects/" not in n["url"] for n in nodes)),
        ):
            if bad:
                raise SfError(400, "INVALID_REQUEST", f"Composite graph: {problem}")
