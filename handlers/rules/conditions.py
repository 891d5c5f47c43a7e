"""Evaluate a rule's ``when`` against an event's context, saying why it held or which test failed."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.rules.model import All, Any_, Condition, Not, RuleSettings, SettingRef, Test

MISSING = object()


@dataclass(frozen=True)
class Verdict:
    """Whether a condition held, and the reason in words an admin reads."""

    holds: bool
    reason: str


def _resolve(value: Any, settings: RuleSettings) -> Any:
    if isinstance(value, SettingRef):
        resolved = getattr(settings, value.setting, MISSING)
        if resolved is MISSING:
            raise KeyError(f"unknown setting {value.setting!r}")
        return resolved
    return value


def _shown(value: Any, resolved: Any) -> str:
    """``value`` as a failed test's reason shows it; only a failed test needs it."""
    if isinstance(value, SettingRef):
        return f"{resolved!r} (setting {value.setting})"
    return repr(value)


def _num(a: Any, b: Any, op: Callable[[float, float], bool]) -> bool:
    if isinstance(a, bool) or not isinstance(a, int | float):
        return False
    return op(float(a), float(b))


def _contains(actual: Any, needle: Any) -> bool:
    if isinstance(actual, str):
        return str(needle).casefold() in actual.casefold()
    if isinstance(actual, list | tuple):
        return needle in actual
    return False


def _between(actual: Any, bounds: Any) -> bool:
    return _num(actual, bounds[0], operator.ge) and _num(actual, bounds[1], operator.le)


# One table, built once: a rule's tests run for every event.
_CHECKS: Mapping[str, Callable[[Any, Any], bool]] = {
    "equals": operator.eq,
    "not_equals": operator.ne,
    "in": lambda actual, expected: actual in expected,
    "not_in": lambda actual, expected: actual not in expected,
    "greater_than": lambda actual, expected: _num(actual, expected, operator.gt),
    "less_than": lambda actual, expected: _num(actual, expected, operator.lt),
    "at_least": lambda actual, expected: _num(actual, expected, operator.ge),
    "at_most": lambda actual, expected: _num(actual, expected, operator.le),
    "between": _between,
    "contains": _contains,
    "matches": lambda actual, expected: isinstance(actual, str)
    and re.search(expected, actual) is not None,
}


def evaluate(condition: Condition | None, context: Mapping[str, Any], settings: RuleSettings) -> Verdict:
    """Evaluate ``condition``; on failure the reason names the first test that failed. For a
    condition evaluated again and again (a rule's ``when``), keep ``compiled(condition)``."""
    return compiled(condition)(context, settings)


# A condition is walked once (which kind, which tests are set, which values are settings) into a
# function of the context: every rule is evaluated for every event of its type. A setting is
# resolved when its test is reached, so an unknown one is a KeyError only where it matters.

Evaluator = Callable[[Mapping[str, Any], RuleSettings], Verdict]
_HOLDS = Verdict(True, "no conditions")


def compiled(condition: Condition | None) -> Evaluator:
    """``condition`` as one function of the context and settings, giving its ``Verdict``."""
    if condition is None:
        return lambda context, settings: _HOLDS
    if isinstance(condition, All):
        return _compiled_all(condition.all)
    if isinstance(condition, Any_):
        return _compiled_any([compiled(part) for part in condition.any])
    if isinstance(condition, Not):
        return _compiled_not(compiled(condition.not_))
    return _compiled_all([{k: v} for k, v in condition.items()])


def _compiled_any(parts: list[Evaluator]) -> Evaluator:
    def any_(context: Mapping[str, Any], settings: RuleSettings) -> Verdict:
        reasons = []
        for part in parts:
            verdict = part(context, settings)
            if verdict.holds:
                return verdict
            reasons.append(verdict.reason)
        return Verdict(False, "none of: " + "; ".join(reasons))
    return any_


def _compiled_not(inner: Evaluator) -> Evaluator:
    def not_(context: Mapping[str, Any], settings: RuleSettings) -> Verdict:
        verdict = inner(context, settings)
        return Verdict(not verdict.holds,
                       ("not " if not verdict.holds else "it is so that ") + verdict.reason)
    return not_


def _compiled_all(parts: list[Condition]) -> Evaluator:
    checks = tuple(_compiled_field(*next(iter(part.items())))
                   if isinstance(part, dict) and len(part) == 1 else compiled(part)
                   for part in parts)

    def all_(context: Mapping[str, Any], settings: RuleSettings) -> Verdict:
        reasons = []
        for check in checks:
            verdict = check(context, settings)
            if not verdict.holds:
                return verdict
            reasons.append(verdict.reason)
        return Verdict(True, "; ".join(reasons) or "no conditions")
    return all_


def _compiled_field(name: str, test: Test) -> Evaluator:
    # The tests set, in the order the model declares them: a set's own order changes with each
    # process's string hashing, and so did which failed test a reason named.
    steps = tuple(("in" if test_name == "in_" else test_name, getattr(test, test_name))
                  for test_name in type(test).model_fields if test_name in test.model_fields_set)

    def field(context: Mapping[str, Any], settings: RuleSettings) -> Verdict:
        actual = context.get(name)
        shown = "missing" if actual is None else repr(actual)
        for key, raw in steps:
            if key == "exists":
                if (actual is not None) != raw:
                    return Verdict(False, f"{name} is {shown}, expected it "
                                          f"{'' if raw else 'not '}to exist")
                continue
            if key == "between":
                expected: Any = (_resolve(raw[0], settings), _resolve(raw[1], settings))
            else:
                expected = _resolve(raw, settings)
            if not _CHECKS[key](actual, expected):
                if key == "between":
                    expected_text = (f"{_shown(raw[0], expected[0])} and "
                                     f"{_shown(raw[1], expected[1])}")
                else:
                    expected_text = _shown(raw, expected)
                return Verdict(False, f"{name} is {shown}, not {key.replace('_', ' ')} "
                                      f"{expected_text}")
        return Verdict(True, f"{name} is {shown}")
    return field
