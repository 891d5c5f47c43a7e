"""A rule's ``when`` gives the verdicts recorded in ``condition_verdicts.json``: whether it holds
and the reason an admin reads, for every kind of test and combination, on contexts that pass and
fail each test, with settings resolved as they are reached and an unknown one a KeyError. The
verdicts were recorded from the walk ``evaluate`` made before conditions were compiled once per
rule set; a change to a reason's words shows here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from handlers.rules.conditions import Verdict, compiled, evaluate
from handlers.rules.model import Condition
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


RECORDED = json.loads((Path(__file__).parent / "condition_verdicts.json").read_text())
_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def _outcome(call: Any) -> Verdict | str:
    try:
        return call()  # type: ignore[no-any-return]
    except KeyError as exc:
        return f"KeyError: {exc.args[0]}"


def _recorded(case: dict[str, Any]) -> Verdict | str:
    return case["error"] if "error" in case else Verdict(case["holds"], case["reason"])


@pytest.mark.parametrize("context", range(len(CONTEXTS)))
def test_each_condition_gives_its_recorded_verdict_and_reason(context: int) -> None:
    settings = default_rules().settings
    cases = [c for c in RECORDED if c["context"] == context]
    for case in cases:
        when = None if case["when"] is None else _CONDITION.validate_python(case["when"])
        check = compiled(when)
        assert _outcome(lambda: check(CONTEXTS[context], settings)) == _recorded(case), case  # noqa: B023
        assert _outcome(lambda: evaluate(when, CONTEXTS[context], settings)) == _recorded(case)  # noqa: B023
    assert len(cases) == len(CONDITIONS)


def test_the_recorded_verdicts_cover_the_conditions_failures_passes_and_unknown_settings() -> None:
    assert sorted({json.dumps(c["when"]) for c in RECORDED}) == sorted(json.dumps(c) for c in CONDITIONS)
    assert {type(_recorded(c)).__name__ for c in RECORDED} == {"Verdict", "str"}
    assert {c["holds"] for c in RECORDED if "holds" in c} == {True, False}


def test_every_default_rule_is_evaluated_without_error() -> None:
    rules = default_rules()
    for rule in rules.file.rules:
        for context in CONTEXTS:
            assert isinstance(rules.evaluator(rule)(context, rules.settings), Verdict), rule.id
