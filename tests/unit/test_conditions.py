"""A rule's ``when`` worked out once (``compiled``) gives exactly ``evaluate``'s verdict: whether
it holds and the reason, for every kind of test and combination, on contexts that pass and fail
each test, with settings resolved as they are reached, an unknown one a KeyError either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from handlers.rules.conditions import Verdict, compiled, evaluate
from handlers.rules.model import Condition, RuleSettings
from tests.unit.rulesets import default_rules

CONDITIONS: list[Any] = [
    None, {}, {"annual_value": {"at_least": {"setting": "high_value_threshold"}}},
    {"any": [{"annual_value": {"at_least": 1000}}, {"annual_value": {"exists": False}}]},
    {"all": [{"segment": {"in": ["smb", "mid"]}}, {"reason": {"contains": "PRICE"}}]},
    {"not": {"competitor": {"exists": True}}},
    {"not": {"any": [{"severity": {"equals": "low"}}, {"plan.is_open": {"equals": False}}]}},
    {"severity": {"not_in": ["low"], "not_equals": "medium"}, "summary": {"matches": "^We"}},
    {"annual_value": {"between": [{"setting": "high_value_threshold"}, 100000]}},
    {"annual_value": {"greater_than": 10, "less_than": 99999, "at_most": 50000}},
    {"plan.complaint_count": {"at_least": 1}, "plan.stage": {"equals": "discovering"}},
    {"all": [{"all": []}, {"any": []}, {"tags": {"contains": "vip"}}]},
    {"annual_value": {"at_least": {"setting": "no_such_setting"}}},
    {"any": [{"annual_value": {"exists": True}}, {"x": {"equals": {"setting": "nope"}}}]},
]

CONTEXTS: list[dict[str, Any]] = [
    {}, {"annual_value": 48000.0, "segment": "smb", "reason": "price went up", "competitor": None,
         "severity": "high", "summary": "We waited", "plan.is_open": True, "tags": ["vip"],
         "plan.complaint_count": 2, "plan.stage": "discovering"},
    {"annual_value": 12, "segment": "enterprise", "reason": None, "competitor": "Contoso",
     "severity": "low", "summary": "waited", "plan.is_open": False, "tags": "VIP customers",
     "plan.complaint_count": 0, "plan.stage": "lost"},
    {"annual_value": True, "segment": None, "reason": "", "severity": "medium", "tags": []},
    {"annual_value": "48000", "summary": 5, "plan.complaint_count": None},
]


def _conditions() -> Iterator[Condition | None]:
    adapter: TypeAdapter[Condition] = TypeAdapter(Condition)
    for raw in CONDITIONS:
        yield None if raw is None else adapter.validate_python(raw)
    for rule in default_rules().file.rules:
        yield rule.when


def _outcome(call: Any) -> Verdict | str:
    try:
        return call()  # type: ignore[no-any-return]
    except KeyError as exc:
        return f"KeyError: {exc.args[0]}"


@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_a_compiled_condition_gives_evaluates_verdict_and_reason(context: dict[str, Any]) -> None:
    settings = default_rules().settings
    for condition in _conditions():
        check = compiled(condition)
        expected = _outcome(lambda: evaluate(condition, context, settings))  # noqa: B023
        assert _outcome(lambda: check(context, settings)) == expected, condition  # noqa: B023


def test_the_verdicts_compared_include_failures_passes_and_unknown_settings() -> None:
    seen = {type(_outcome(lambda: evaluate(c, ctx, RuleSettings()))).__name__  # noqa: B023
            for c in _conditions() for ctx in CONTEXTS}
    reasons = {v.holds for c in _conditions() for ctx in CONTEXTS
               if isinstance(v := _outcome(lambda: evaluate(c, ctx, RuleSettings())),  # noqa: B023
                             Verdict)}
    assert seen == {"Verdict", "str"}
    assert reasons == {True, False}
