"""The SOQL the adapter issues: SELECT fields FROM object [WHERE a AND b...] [ORDER BY ...] [LIMIT n].

Conditions are ``field = value``, ``field != value``, ``field IN (values)`` and ``NOT IN``;
values are quoted strings (with SOQL's backslash escapes), numbers, true, false and null.
Anything else is MALFORMED_QUERY, as Salesforce would answer for what it cannot parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.sfserver.org import SfError

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|=|<=|>=|<|>|\(|\)|,)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""", re.VERBOSE)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: tuple[tuple[str, str, Any], ...]  # (field, op, value or tuple of values)
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int | None


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise malformed(text, f"unexpected token at {pos}")
        pos = match.end()
        kind = match.lastgroup or ""
        value: Any = match[kind]
        if kind == "string":
            value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), value[1:-1])
        elif kind == "number":
            value = float(value)
        elif kind == "word" and value.lower() in ("null", "true", "false"):
            kind, value = "literal", {"null": None, "true": True, "false": False}[value.lower()]
        out.append((kind, value))
    return out


def malformed(text: str, why: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", f"{text}\nERROR at Row:1\n{why}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = _tokens(text)
        self.pos = 0

    def peek_word(self) -> str:
        kind, value = self.items[self.pos] if self.pos < len(self.items) else ("", "")
        return str(value).upper() if kind == "word" else ""

    def take(self, kind: str | None = None, word: str | None = None) -> Any:
        if self.pos >= len(self.items):
            raise malformed(self.text, "unexpected end of query")
        got_kind, value = self.items[self.pos]
        if (kind and got_kind != kind) or (word and str(value).upper() != word):
            raise malformed(self.text, f"unexpected {value!r}, wanted {word or kind}")
        self.pos += 1
        return value

    def parse(self) -> Query:
        self.take("word", "SELECT")
        fields = [self.take("word")]
        while self.items[self.pos] == ("op", ","):
            self.pos += 1
            fields.append(self.take("word"))
        self.take("word", "FROM")
        sobject = self.take("word")
        where = self._where() if self.peek_word() == "WHERE" else ()
        order = self._order() if self.peek_word() == "ORDER" else ()
        limit = None
        if self.peek_word() == "LIMIT":
            self.take("word", "LIMIT")
            limit = int(self.take("number"))
        if self.pos != len(self.items):
            raise malformed(self.text, f"unexpected {self.items[self.pos][1]!r}")
        return Query(tuple(fields), sobject, where, order, limit)

    def _where(self) -> tuple[tuple[str, str, Any], ...]:
        self.take("word", "WHERE")
        conditions = [self._condition()]
        while self.peek_word() == "AND":
            self.take("word", "AND")
            conditions.append(self._condition())
        return tuple(conditions)

    def _condition(self) -> tuple[str, str, Any]:
        name = self.take("word")
        if self.peek_word() == "NOT":
            self.take("word", "NOT")
            self.take("word", "IN")
            return name, "NOT IN", self._list()
        if self.peek_word() == "IN":
            self.take("word", "IN")
            return name, "IN", self._list()
        op = self.take("op")
        if op not in ("=", "!="):
            raise malformed(self.text, f"operator {op} is not supported here")
        return name, op, self._value()

    def _value(self) -> Any:
        kind, value = self.items[self.pos]
        if kind not in ("string", "number", "literal"):
            raise malformed(self.text, f"expected a value, got {value!r}")
        self.pos += 1
        return value

    def _list(self) -> tuple[Any, ...]:
        self.take("op")
        values = [self._value()]
        while self.items[self.pos] == ("op", ","):
            self.pos += 1
            values.append(self._value())
        if self.take("op") != ")":
            raise malformed(self.text, "expected )")
        return tuple(values)

    def _order(self) -> tuple[tuple[str, bool], ...]:
        self.take("word", "ORDER")
        self.take("word", "BY")
        order = []
        while True:
            name = self.take("word")
            descending = self.peek_word() == "DESC"
            if self.peek_word() in ("ASC", "DESC"):
                self.pos += 1
            order.append((name, descending))
            if self.pos < len(self.items) and self.items[self.pos] == ("op", ","):
                self.pos += 1
                continue
            return tuple(order)


def parse(text: str) -> Query:
    try:
        return _Parser(text).parse()
    except IndexError as exc:
        raise malformed(text, "unexpected end of query") from exc


def matches(row: dict[str, Any], where: tuple[tuple[str, str, Any], ...]) -> bool:
    for name, op, value in where:
        have = row.get(name)
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "IN" and have not in value:
            return False
        if op == "NOT IN" and have in value:
            return False
    return True


def run(query: Query, rows: list[dict[str, Any]], known: set[str]) -> list[dict[str, Any]]:
    """Select, filter, order and limit ``rows`` of ``query.sobject`` (fields in ``known`` only)."""
    used = set(query.fields) | {w[0] for w in query.where} | {o[0] for o in query.order}
    for name in sorted(used - known):
        raise SfError(400, "INVALID_FIELD", f"No such column '{name}' on entity "
                      f"'{query.sobject}'. If you are attempting to use a custom field, be sure "
                      "to append the '__c' after the custom field name.")
    # IN lists as sets: the org scans every row, and the adapter's lists hold up to 200 values.
    where = tuple((name, op, frozenset(value) if op in ("IN", "NOT IN") else value)
                  for name, op, value in query.where)
    found = [row for row in rows if matches(row, where)]
    for name, descending in reversed(query.order):
        # Salesforce sorts nulls first ascending; strings compare case-insensitively.
        found.sort(key=lambda r, n=name: (r.get(n) is not None, _sortable(r.get(n))),
                   reverse=descending)
    if query.limit is not None:
        found = found[:query.limit]
    return [{name: row.get(name) for name in query.fields} for row in found]


def _sortable(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else (0 if value is None else value)
