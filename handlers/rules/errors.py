"""Problems in a rules file, each at ``file:line:column``, and pydantic's errors turned into them.

Pydantic reports a value that fails a union (an action, a condition, ``{setting: name}`` or a
plain value) once per union member, most of them noise: a ``create_task`` also "misses"
``draft_apology``. Here the member the admin evidently meant is picked from the YAML itself (the
key they wrote, or the kind of value) and only that member's errors are kept, so each mistake is
reported once, in words, with what was expected and a suggestion where one is close.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from handlers.errors import ConfigError

Path = tuple[str | int, ...]
Locate = Callable[[Path, bool], tuple[int, int]]  # (path, at the key?) -> (line, column), 1-based


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the rules or a template, where it is, and how to put it right."""

    file: str
    line: int
    column: int
    message: str
    expected: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.suggestion:
            return f"{text} — {self.suggestion}"
        return f"{text} (expected {self.expected})" if self.expected else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RulesInvalidError(ConfigError):
    """The rules file (or a template it uses) is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        count = len(self.problems)
        head = f"the rules are invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(str(p) for p in self.problems)]))


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None when nothing is close."""
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


# --- walking the model's types along an error location ----------------------------------------


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        members = _union_args(tp)
        if members is not None and len(members) == 1:
            tp = members[0]
            continue
        return tp


def _union_args(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [m for m in get_args(tp) if m is not type(None)]
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def keys_of(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts, aliases first, in definition order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _branch(members: Sequence[Any], tag: str) -> Any:
    """The union member pydantic names ``tag`` (``CreateTaskAction``, ``dict[str,...]``, ``str``)."""
    for member in members:
        if _is_model(member) and (tag == member.__name__ or tag.endswith(f" {member.__name__}]")):
            return member
        origin = get_origin(member) or member
        if tag.split("[")[0].lower() == getattr(origin, "__name__", "").lower():
            return member
    return None


def _child(tp: Any, seg: str | int) -> Any:
    if _is_model(tp):
        for name, info in tp.model_fields.items():
            if seg in (name, info.alias):
                return info.annotation
        return None
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is tuple and args:
        return args[0] if args[-1] is Ellipsis or not isinstance(seg, int) else args[seg]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


@dataclass(frozen=True)
class _Choice:
    """A union on an error's way: where (data path), the member pydantic tried, all members."""

    at: Path
    tag: str
    members: tuple[Any, ...]


@dataclass(frozen=True)
class _Located:
    """One pydantic error with its location split into the YAML path and the union members tried."""

    kind: str
    msg: str
    ctx: dict[str, Any]
    path: Path
    choices: tuple[_Choice, ...]
    container: Any  # the type holding the last path segment (a model for unknown keys)
    target: Any  # the type expected at the path


def _locate_error(root: type[BaseModel], err: Any) -> _Located:
    tp: Any = root
    container: Any = None
    path: list[str | int] = []
    choices: list[_Choice] = []
    for seg in err["loc"]:
        tp = _unwrap(tp)
        members = _union_args(tp)
        if members is not None and isinstance(seg, str) and _branch(members, seg) is not None:
            choices.append(_Choice(tuple(path), seg, tuple(members)))
            tp = _branch(members, seg)
            continue
        container, tp = tp, _child(tp, seg)
        path.append(seg)
    return _Located(err["type"], err["msg"], dict(err.get("ctx") or {}), tuple(path),
                    tuple(choices), container, _unwrap(tp))


def node_at(data: Any, path: Path) -> Any:
    """The plain YAML value at ``path``, or None."""
    for seg in path:
        found = (isinstance(data, dict) and seg in data) or (
            isinstance(data, list) and isinstance(seg, int) and seg < len(data))
        if found:
            data = data[seg]
        else:
            return None
    return data


def _preferred(node: Any, members: Sequence[Any]) -> tuple[Any, ...]:
    """The members the admin evidently meant: by the keys they wrote, or by the kind of value."""
    models = [m for m in members if _is_model(m)]
    others = [m for m in members if not _is_model(m)]
    if isinstance(node, dict):
        keyed = [m for m in models if set(node) & set(keys_of(m))]
        dicts = [m for m in others if get_origin(m) is dict]
        return tuple(keyed or dicts or models or members)
    return tuple(others or members)


# --- from pydantic's errors to problems --------------------------------------------------------

_TYPE_ERRORS = frozenset({
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "list_type", "tuple_type", "dict_type", "model_type",
    "model_attributes_type", "none_required",
})
_LITERAL_NOUNS = {"on": "event type", "kind": "task kind", "priority": "priority",
                  "outcome": "outcome"}
_TEST_NAMES = ("equals", "not_equals", "in", "not_in", "greater_than", "less_than", "at_least",
               "at_most", "between", "contains", "matches", "exists")


def one_of(choices: Sequence[str]) -> str:
    return "one of: " + ", ".join(choices)


def _noun(tp: Any) -> str:
    tp = _unwrap(tp)
    members = _union_args(tp)
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
    if _is_model(tp):
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


def label(path: Path, data: Any) -> str:
    """How an admin would name the thing at ``path``: ``'subject'``, ``rule 'x'``, ``item 2 of...``."""
    if not path:
        return "the rules file"
    if len(path) == 2 and path[0] == "rules" and isinstance(path[1], int):
        rule_id = node_at(data, (*path, "id"))
        return f"rule '{rule_id}'" if isinstance(rule_id, str) else f"rule {path[1] + 1}"
    last = path[-1]
    if isinstance(last, int):
        return f"item {last + 1} of {label(path[:-1], data)}"
    return f"'{last}'"


class _Translator:
    """Turns one ``ValidationError`` on ``data`` into problems, one per mistake."""

    def __init__(self, root: type[BaseModel], data: Any, file: str, locate: Locate) -> None:
        self.root, self.data, self.file, self.locate = root, data, file, locate

    def problem(self, path: Path, at_key: bool, message: str, expected: str | None = None,
                suggestion: str | None = None) -> Problem:
        line, column = self.locate(path, at_key)
        return Problem(self.file, line, column, message, expected, suggestion)

    def translate(self, exc: ValidationError) -> list[Problem]:
        located = [_locate_error(self.root, e) for e in exc.errors(include_url=False)]
        meant = [e for e in located if all(self._meant(c) for c in e.choices)]
        unclear: dict[Path, _Choice] = {}
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

    def _preferred(self, choice: _Choice) -> tuple[Any, ...]:
        return _preferred(node_at(self.data, choice.at), choice.members)

    def _meant(self, choice: _Choice) -> bool:
        return _branch(choice.members, choice.tag) in self._preferred(choice)

    @staticmethod
    def _misspelt_elsewhere(err: _Located, errors: list[_Located]) -> bool:
        # "missing 'severity'" says nothing new next to "unknown key 'sevrity' — did you mean...".
        if err.kind != "missing":
            return False
        parent, key = err.path[:-1], err.path[-1]
        return any(
            e.kind == "extra_forbidden" and e.path[:-1] == parent and _is_model(e.container)
            and did_you_mean(e.path[-1], keys_of(e.container)) == f"did you mean '{key}'?"
            for e in errors
        )

    def single(self, err: _Located) -> Problem:
        value, name = node_at(self.data, err.path), label(err.path, self.data)
        if err.kind == "extra_forbidden":
            allowed = keys_of(err.container) if _is_model(err.container) else []
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

    def wrong_type(self, err: _Located, value: Any, name: str) -> Problem:
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

    def union(self, choice: _Choice) -> list[Problem]:
        at, node = choice.at, node_at(self.data, choice.at)
        members = self._preferred(choice)
        thing = "action" if len(at) >= 2 and at[-2] == "then" else "key"
        if not isinstance(node, dict):
            return [self.problem(at, False, f"wrong type for {label(at, self.data)}: got "
                                 f"{_describe(node)}", either(_noun(m) for m in choice.members))]
        keys = [k for m in members if _is_model(m) for k in keys_of(m)]
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
