"""One event's contexts: the condition context reads each ``plan.<name>`` from the plan it is
built for, exactly as the merged dict it replaces would, and follows the plan as the run writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.context import PLAN_FIELDS, PLAN_NAMES, EventContexts, plan_view
from handlers.plan import Breach, CheckIn, Meeting, Plan, Timer
from handlers.registry import handle
from handlers.rules.model import RuleSettings
from tests.unit.rulesets import (
    default_rules,
    lapsed,
    later,
    one_task,
    plan_of,
    raw_rules,
    rules_from,
    with_settings,
)

NOW = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)


def _opened() -> Plan:
    event = lapsed()
    return plan_of(handle(event, None, default_rules(), later(event)))


def _merged(data: dict[str, Any], derived: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The condition context as one dict: data, derived facts, then the plan's names."""
    def blank(value: Any) -> Any:
        return None if isinstance(value, list | tuple) and not value else value
    merged = {k: blank(v) for k, v in {**data, **derived}.items()}
    merged.update({f"plan.{k}": blank(v) for k, v in plan_view(plan).items()})
    return merged


def test_the_condition_context_reads_as_the_merged_dict_in_the_same_order() -> None:
    event, plan = lapsed(competitor="Contoso", **{"plan.stage": "won"}), _opened()
    context = EventContexts(event, RuleSettings(), NOW, {"plan_reused": True}).condition(plan)
    expected = _merged(event.data.model_dump(), {"plan_reused": True}, plan)
    assert list(context) == list(expected)
    assert {name: context.get(name) for name in context} == expected
    assert context.get("plan.stage") == plan.stage  # the plan wins over an event field
    assert context.get("plan.no_such_field") is None
    assert context.get("competitor") == "Contoso"


def test_the_condition_context_follows_a_plan_the_run_wrote() -> None:
    plan = _opened()
    contexts = EventContexts(lapsed(), RuleSettings(), NOW, {"plan_reused": False})
    assert contexts.condition(plan).get("plan.complaint_count") == 0
    assert contexts.condition(plan).get("plan.complaints") is None  # empty counts as missing
    written = plan.model_copy(update={"complaints": ("CMP-1",), "stage": "lost"})
    after = contexts.condition(written)
    assert after.get("plan.complaint_count") == 1
    assert after.get("plan.complaints") == ["CMP-1"]
    assert after.get("plan.is_open") is False
    assert contexts.condition(plan).get("plan.is_open") is True


def test_the_plan_view_names_every_plan_name_in_catalogue_order() -> None:
    assert tuple(plan_view(_opened())) == PLAN_NAMES


def test_what_a_rule_set_makes_of_a_spec_is_made_once_and_afresh_for_another_rule_set() -> None:
    spec, made = object(), []

    def make() -> int:
        made.append(spec)
        return len(made)

    first, second = rules_from(raw_rules()), rules_from(raw_rules())
    assert [first.made_once(spec, make), first.made_once(spec, make)] == [1, 1]
    assert second.made_once(spec, make) == 2
    assert first.with_owner_ids({"default": "005B"}).made_once(spec, make) == 3


def test_an_offer_and_the_settings_follow_the_rule_set_they_are_handled_with() -> None:
    event, offers = lapsed(), raw_rules()["settings"]["offers"]
    titles = []
    for title in ("A guaranteed refund", "Money back in 90 days"):
        chosen = {**offers["guaranteed_refund"], "title": title}
        rules = with_settings(offers={**offers, "guaranteed_refund": chosen})
        titles.append(one_task(handle(event, None, rules, later(event)), "offer").subject)
    assert titles == ["Make it easy for Northwind Traders to start again: A guaranteed refund",
                      "Make it easy for Northwind Traders to start again: Money back in 90 days"]


def _writes() -> list[dict[str, Any]]:
    at = datetime(2026, 11, 4, 10, tzinfo=UTC)
    return [
        {"history": ()}, {"stage": "lost", "closed_at": at}, {"contact_name": "Sam Lee"},
        {"account_name": None, "owner_id": "USR-BOB"},
        {"meetings": (Meeting(meeting_id="M-1", held_at=at, kind="check_in", sentiment=1,
                              movement=1),)},
        {"timers": (Timer(key="T-1", kind="unless_done", step_key="S", due_at=at, rule_id="r"),)},
        {"checkins": (CheckIn(slot=1, key="K-1", start_at=at, status="done"),)},
        {"breaches": (Breach(at=at, timer_key="T-1", step_key="S", kind="sla"),)},
        {"new_experiences": ("a faster reply",), "complaints": ("CMP-1",)},
    ]


def test_the_template_context_after_each_write_is_the_one_built_afresh_for_that_plan() -> None:
    event, plan = lapsed(owner_id=None, contact_name=None), _opened()  # the plan says who
    contexts = EventContexts(event, RuleSettings(), NOW, {"plan_reused": False})
    contexts.template(plan)
    for update in _writes():
        plan = plan.model_copy(update=update)
        fresh = EventContexts(event, RuleSettings(), NOW, {"plan_reused": False}).template(plan)
        got = contexts.template(plan)
        assert list(got.items()) == list(fresh.items()), update
        assert list(got["plan"].items()) == list(fresh["plan"].items()), update


def test_a_write_no_template_reads_keeps_the_template_context_and_a_stored_plan_rebuilds_it(
        ) -> None:
    event, plan = lapsed(), _opened()
    contexts = EventContexts(event, RuleSettings(), NOW, {"plan_reused": False})
    before = contexts.template(plan)
    assert contexts.template(plan.model_copy(update={"history": ()})) is before
    reread = Plan.model_validate_json(plan.model_copy(update={"stage": "won"}).model_dump_json())
    after = contexts.template(reread)
    assert after["plan"]["stage"] == "won"
    assert after["plan"]["is_open"] is False
    assert after == EventContexts(event, RuleSettings(), NOW, {"plan_reused": False}).template(
        reread)


def test_the_plan_view_holds_every_field_with_tuples_as_lists_and_the_summaries() -> None:
    plan = _opened()
    for update in _writes():
        plan = plan.model_copy(update=update)
        fields = {name: list(v) if isinstance(v, tuple) else v
                  for name, v in ((name, getattr(plan, name)) for name in PLAN_FIELDS)}
        view = plan_view(plan)
        assert {name: view[name] for name in PLAN_FIELDS} == fields
        assert all(type(view[name]) is type(fields[name]) for name in PLAN_FIELDS)
        assert view["complaint_count"] == len(plan.complaints)
        assert view["is_open"] is plan.is_open
