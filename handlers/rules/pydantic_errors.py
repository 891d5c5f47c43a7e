"""Pydantic's validation errors on a rules file, turned into problems at ``file:line:column``.

Pydantic reports a value that fails a union once per member, most of them noise: a
``create_task`` also "misses" ``draft_apology``. Only the errors of the member the admin evidently
meant are kept (``handlers.rules.error_paths`` picks it), so each mistake is reported once, in
words, with what was expected and a suggestion where one is close.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from handlers.rules.error_paths import (
    Choice,
    Located,
    branch,
    is_model,
    keys_of,
    locate_error,
    preferred,
    union_args,
    unwrap,
)
from handlers.rules.errors import Locate, Path, Problem, did_you_mean, label, node_at, one_of

_TYPE_ERRORS = frozenset({
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "list_type", "tuple_type", "dict_type", "model_type",
    "model_attributes_type", "none_required",
})
_LITERAL_NOUNS = {"on": "event type", "kind": "task kind", "priority": "priority",
                  "outcome": "outcome"}
_TEST_NAMES = ("equals", "not_equals", "in", "not_in", "greater_than", "less_than", "at_least",
               "at_most", "between", "contains", "matches", "exists")


def _noun(tp: Any) -> str:
    tp = unwrap(tp)
    members = union_args(tp)
    if members is not None:
        return either(_noun(m) for m in members)
    simple = {str: "text", bool: "true/false", int: "a whole number", float: "a number"}
    if tp in simple:
        return simple[tp]
    origin = get_origin(tp)
    if origin is Literal:
        return one_of([str(a) for a in get_args(tp)])
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if is_model(tp):
        keys = keys_of(tp)
        return f"{{{keys[0]}: ...}}" if len(keys) == 1 else f"a mapping of {', '.join(keys)}"
    return getattr(tp, "__name__", str(tp))


def either(nouns: Iterable[str]) -> str:
    """``text, a number or true/false``: each noun once; a number covers whole numbers."""
    unique = list(dict.fromkeys(nouns))
    if "a number" in unique and "a whole number" in unique:
        unique.remove("a whole number")
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    return "a list" if isinstance(value, list) else "a mapping"


class _Translator:
    """Turns one ``ValidationError`` on ``data`` into problems, one per mistake."""

    def __init__(self, root: type[BaseModel], data: Any, file: str, locate: Locate) -> None:
        self.root, self.data, self.file, self.locate = root, data, file, locate

    def problem(self, path: Path, at_key: bool, message: str, expected: str | None = None,
                suggestion: str | None = None) -> Problem:
        line, column = self.locate(path, at_key)
        return Problem(self.file, line, column, message, expected, suggestion)

    def translate(self, exc: ValidationError) -> list[Problem]:
        located = [locate_error(self.root, e) for e in exc.errors(include_url=False)]
        meant = [e for e in located if all(self._meant(c) for c in e.choices)]
        unclear: dict[Path, Choice] = {}
        problems = []
        for err in meant:
            choice = next((c for c in err.choices if len(self._preferred(c)) > 1), None)
            if choice is not None:
                unclear.setdefault(choice.at, choice)
            elif not self._misspelt_elsewhere(err, meant):
                problems.append(self.single(err))
        for choice in unclear.values():
            problems.extend(self.union(choice))
        return problems

    def _preferred(self, choice: Choice) -> tuple[Any, ...]:
        return preferred(node_at(self.data, choice.at), choice.members)

    def _meant(self, choice: Choice) -> bool:
        return branch(choice.members, choice.tag) in self._preferred(choice)

    @staticmethod
    def _misspelt_elsewhere(err: Located, errors: list[Located]) -> bool:
        # "missing 'severity'" says nothing new next to "unknown key 'sevrity' — did you mean...".
        if err.kind != "missing":
            return False
        parent, key = err.path[:-1], err.path[-1]
        return any(
            e.kind == "extra_forbidden" and e.path[:-1] == parent and is_model(e.container)
            and did_you_mean(e.path[-1], keys_of(e.container)) == f"did you mean '{key}'?"
            for e in errors
        )

    def single(self, err: Located) -> Problem:
        value, name = node_at(self.data, err.path), label(err.path, self.data)
        if err.kind == "extra_forbidden":
            allowed = keys_of(err.container) if is_model(err.container) else []
            return self.problem(err.path, True, f"unknown key '{err.path[-1]}'",
                                one_of(allowed) if allowed else None,
                                did_you_mean(err.path[-1], allowed))
        if err.kind == "missing":
            where = label(err.path[:-1], self.data)
            return self.problem(err.path[:-1], True, f"missing key '{err.path[-1]}' in {where}",
                                _noun(err.target))
        if err.kind == "literal_error":
            choices = [str(a) for a in get_args(err.target)]
            noun = _LITERAL_NOUNS.get(str(err.path[-1]), "value")
            return self.problem(err.path, False, f"unknown {noun} '{value}'",
                                one_of(choices), did_you_mean(value, choices))
        if err.kind in _TYPE_ERRORS:
            return self.wrong_type(err, value, name)
        if err.kind == "too_short":
            count = err.ctx.get("min_length", 1)
            return self.problem(err.path, False, f"{name} needs at least {count} "
                                f"item{'s' if count != 1 else ''}")
        text = err.ctx["error"] if err.kind == "value_error" and "error" in err.ctx else err.msg
        return self.problem(err.path, False, f"{name}: {str(text)[0].lower()}{str(text)[1:]}")

    def wrong_type(self, err: Located, value: Any, name: str) -> Problem:
        key = err.path[-1] if err.path else None
        if key in _TEST_NAMES and err.container is not None and get_origin(err.container) is dict:
            return self.problem(err.path, True, f"'{key}' is a test, not a field name",
                                "a field name, then its tests",
                                f"write the field first: `some_field: {{{key}: ...}}`")
        suggestion = None
        if err.target is str and isinstance(value, int | float | date) and value is not None:
            suggestion = f'put it in quotes: "{value}"'
        return self.problem(err.path, False, f"wrong type for {name}: got {_describe(value)}",
                            _noun(err.target), suggestion)

    def union(self, choice: Choice) -> list[Problem]:
        at, node = choice.at, node_at(self.data, choice.at)
        members = self._preferred(choice)
        thing = "action" if len(at) >= 2 and at[-2] == "then" else "key"
        if not isinstance(node, dict):
            return [self.problem(at, False, f"wrong type for {label(at, self.data)}: got "
                                 f"{_describe(node)}", either(_noun(m) for m in choice.members))]
        keys = [k for m in members if is_model(m) for k in keys_of(m)]
        unknown = [k for k in node if k not in keys]
        present = [k for k in node if k in keys]
        if unknown:
            return [self.problem((*at, k), True, f"unknown {thing} '{k}'", one_of(keys),
                                 did_you_mean(k, keys)) for k in unknown]
        if len(present) > 1:
            together = " and ".join(f"'{k}'" for k in present)
            return [self.problem(at, True, f"{together} are in one {thing}: expected exactly one",
                                 one_of(keys), "give each its own list item ('- ')")]
        return [self.problem(at, True, f"{label(at, self.data)} is empty", one_of(keys))]


def validation_problems(exc: ValidationError, root: type[BaseModel], data: Any, file: str,
                        locate: Locate) -> list[Problem]:
    """Problems for every error pydantic found validating ``data`` (plain YAML data) as ``root``."""
    return _Translator(root, data, file, locate).translate(exc)
