"""``amended``: the plan copy every write makes is the one ``model_copy`` makes, in every respect
pydantic shows (fields, the names set, extras, privates, equality, hashing, frozenness)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from handlers.plan import Change, Plan, amended
from handlers.registry import handle
from tests.unit.rulesets import complaint, default_rules, lapsed, later, plan_of

AT = datetime(2026, 11, 4, 10, tzinfo=UTC)


def _plans() -> list[Plan]:
    bare = Plan(key="ACC-9#1", account_id="ACC-9", seq=1, stage="discovering", opened_at=AT,
                opened_by="evt-1")
    opened = plan_of(handle(lapsed(), None, default_rules(), later(lapsed())))
    event = complaint()
    return [bare, opened, plan_of(handle(event, opened, default_rules(), later(event)))]


UPDATES: list[dict[str, Any]] = [
    {}, {"revision": 7}, {"stage": "lost", "outcome": "lost", "closed_at": AT},
    {"history": (Change(at=AT, event_id="e", rules_version="1", rule_id="r", what="w"),)},
    {"contact_name": None, "do_not_contact": True},
]


@pytest.mark.parametrize("update", UPDATES)
def test_an_amended_plan_is_the_plan_model_copy_makes(update: dict[str, Any]) -> None:
    for plan in _plans():
        expected, got = plan.model_copy(update=update), amended(plan, update)
        assert type(got) is Plan
        assert got == expected
        assert got.__dict__ == expected.__dict__
        assert got.model_fields_set == expected.model_fields_set
        assert got.model_extra == expected.model_extra
        assert got.__pydantic_private__ == expected.__pydantic_private__
        assert got.model_dump_json() == expected.model_dump_json()
        assert hash(got) == hash(expected)


def test_an_amended_plan_is_frozen_and_leaves_the_plan_it_came_from_alone() -> None:
    plan = _plans()[1]
    before = plan.model_dump()
    got = amended(plan, {"stage": "won"})
    with pytest.raises(ValidationError, match="frozen"):
        got.stage = "lost"  # type: ignore[misc]
    assert plan.model_dump() == before
    assert got.model_fields_set is not plan.model_fields_set
