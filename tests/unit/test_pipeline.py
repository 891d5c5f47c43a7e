"""The generic pipeline: rule order and stop, owners, keys, errors, the catalogue, and two stories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.actions import CreateTask, Provenance, SavePlan
from handlers.context import (
    condition_context,
    condition_fields,
    template_context,
    template_variables,
)
from handlers.errors import RuleError, UnknownEventTypeError
from handlers.events import COMPLAINT, CRM_EVENT_TYPES, EVENT_TYPES, LAPSED, MEETING, Event
from handlers.outcome import Outcome
from handlers.pipeline import finish
from handlers.plan import Plan
from handlers.registry import HANDLERS, handle
from handlers.rules.ruleset import RuleSet
from tests.unit.rulesets import (
    complaint,
    default_rules,
    lapsed,
    later,
    meeting,
    one_task,
    plan_of,
    raw_rules,
    rules_from,
    tasks,
    written,
)


def rules_with(*rules: dict[str, Any], **settings: Any) -> RuleSet:
    data = raw_rules()
    data["settings"] = {**data["settings"], **settings}
    data["rules"] = list(rules)
    return rules_from(data)


def task_rule(rule_id: str = "r", **task: Any) -> dict[str, Any]:
    spec = {"kind": "prompt", "subject": "Do it for {{ account_name }}", **task}
    return {"id": rule_id, "on": "customer.lapsed", "then": [{"create_task": spec}]}


def run(event: Event, plan: Plan | None, rules: RuleSet) -> Outcome:
    return handle(event, plan, rules, later(event))


# --- rule order, stop, trace ---------------------------------------------------------------------

def test_rules_run_in_order_and_stop_ends_evaluation_with_later_rules_traced_as_skipped() -> None:
    rules = rules_with(
        task_rule("first", subject="one"),
        {**task_rule("stopper", subject="two"), "when": {"annual_value": {"at_least": 1}},
         "stop": True},
        task_rule("never", subject="three"),
    )
    outcome = run(lapsed(), None, rules)
    assert [t.subject for t in tasks(outcome)] == ["one", "two"]
    assert [(t.rule_id, t.matched, t.stopped, t.skipped) for t in outcome.trace] == [
        ("first", True, False, False),
        ("stopper", True, True, False),
        ("never", False, False, True),
    ]
    assert outcome.trace[2].reason == "skipped: rule stopper stopped"


def test_a_rule_that_does_not_match_is_traced_with_the_failing_test() -> None:
    rules = rules_with({**task_rule("big"), "when": {"annual_value": {"greater_than": 1e6}}})
    outcome = run(lapsed(), None, rules)
    assert tasks(outcome) == []
    assert [(t.rule_id, t.matched, t.reason) for t in outcome.trace] == [
        ("big", False, "annual_value is 48000.0, not greater than 1000000.0")]


def test_a_stop_rule_that_does_not_match_does_not_stop() -> None:
    rules = rules_with({**task_rule("no"), "when": {"annual_value": {"less_than": 1}},
                        "stop": True}, task_rule("yes"))
    assert [t.key for t in tasks(run(lapsed(), None, rules))] == ["ACC-1#1:yes"]


def test_conditions_see_plan_fields_and_extra_crm_fields() -> None:
    rules = rules_with({**task_rule("r"), "when": {
        "plan.stage": {"equals": "discovering"}, "plan.seq": {"equals": 1},
        "region": {"equals": "EMEA"}}})
    assert len(tasks(run(lapsed(region="EMEA"), None, rules))) == 1
    assert tasks(run(lapsed(region="APAC"), None, rules)) == []


# --- owners, dates, keys ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("owner", "event_owner", "expected"),
    [
        ({"field": "owner_id"}, "USR-ALICE", ("USR-ALICE", None)),
        ({"field": "owner_id"}, None, (None, "account_owner")),
        ({"field": "owner_id", "fallback": "managers"}, None, (None, "account_owner_manager")),
        ({"field": "owner_id", "fallback": "survey"}, "USR-ALICE", ("USR-ALICE", None)),
        ({"queue": "managers"}, "USR-ALICE", ("USR-ALICE", "account_owner_manager")),
        ({"queue": "named"}, "USR-ALICE", ("005000000000001AAA", None)),
        ({"queue": "by_username"}, "USR-ALICE", ("005000000000002AAA", None)),
        ({"user": "005LITERAL"}, "USR-ALICE", ("005LITERAL", None)),
        ({"user": "bob@acme.com"}, "USR-ALICE", ("005000000000003AAA", None)),  # resolved
    ],
)
def test_owner_is_resolved_from_field_fallback_role_relation_or_user(
    owner: dict[str, str], event_owner: str | None, expected: tuple[str | None, str | None]
) -> None:
    rules = rules_with(task_rule(owner=owner))
    owners = {**rules.settings.owners, "named": "005000000000001AAA", "by_username": "ann@acme.com"}
    settings = rules.settings.model_copy(update={"owners": owners})
    rules = replace(rules, file=rules.file.model_copy(update={"settings": settings}))
    rules = rules.with_owner_ids({"by_username": "005000000000002AAA",  # as the CRM resolved them
                                  "user:bob@acme.com": "005000000000003AAA"})
    outcome = run(lapsed(owner_id=event_owner), None, rules)
    assert [(t.owner_id, t.assign) for t in tasks(outcome)] == [expected]


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        ({"days": 2}, timedelta(days=2)),
        ({"hours": 4, "minutes": 30}, timedelta(hours=4, minutes=30)),
        ({"sla": True}, timedelta(minutes=20)),
        ({"days": 1, "sla": True}, timedelta(days=1, minutes=20)),
    ],
)
def test_due_dates_count_from_the_event_time(due_in: dict[str, Any], expected: timedelta) -> None:
    event = lapsed()
    (task,) = tasks(handle(event, None, rules_with(task_rule(due_in=due_in)),
                           datetime(2030, 1, 1, tzinfo=UTC)))
    assert event.time is not None
    assert task.due_at == event.time + expected


def test_redelivered_event_writes_the_same_keys_and_records_whatever_the_clock() -> None:
    event = complaint(severity="critical")
    plan = plan_of(run(lapsed(), None, default_rules()))
    first = handle(event, plan, default_rules(), datetime(2026, 11, 3, 10, 1, tzinfo=UTC))
    again = handle(event, plan, default_rules(), datetime(2026, 11, 4, 18, 0, tzinfo=UTC))
    assert written(first) == written(again)
    assert first.actions[:-1] == again.actions[:-1]  # only the plan's history time differs


def test_every_plan_change_is_in_the_history_with_its_rule_and_rules_version() -> None:
    outcome = run(complaint(), plan_of(run(lapsed(), None, default_rules())), default_rules())
    plan = plan_of(outcome)
    assert isinstance(outcome.actions[-1], SavePlan)
    assert outcome.actions[-1].plan == plan
    assert [(c.event_id, c.rule_id, c.what) for c in plan.history[-3:]] == [
        ("evt-complaint", "method", "complaint CMP-1 (medium) recorded"),
        ("evt-complaint", "acknowledge-within-sla",
         "acknowledgement written: ACC-1#1:acknowledge-within-sla:CMP-1"),
        ("evt-complaint", "apologise-once", "apology drafted for review (ACC-1#1:apology)"),
    ]
    assert {c.rules_version for c in plan.history} == {default_rules().version}


def test_for_each_writes_one_task_per_item_with_its_own_key() -> None:
    rule = {"id": "exp", "on": "meeting.held", "then": [{"create_task": {
        "kind": "experience", "subject": "{{ item }}", "for_each": "added_experiences"}}]}
    plan = plan_of(run(lapsed(), None, default_rules()))
    outcome = run(meeting("m1", "2026-11-06T11:00", new_experiences=["A", "B"]), plan,
                  rules_with(rule))
    assert [(t.key, t.subject) for t in tasks(outcome)] == [
        ("ACC-1#1:exp:MTG-m1:1", "A"), ("ACC-1#1:exp:MTG-m1:2", "B")]


# --- rules that cannot produce their action --------------------------------------------------------

@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (task_rule(owner={"queue": "nobody"}), "rule r: no owner 'nobody' in settings.owners"),
        (task_rule(subject="{{ no_such_name }}"), "'no_such_name' is undefined"),
        (task_rule(template="missing.txt.j2"), "template 'missing.txt.j2' not found"),
        (task_rule(for_each="account_name"), "for_each 'account_name' is not a list"),
        ({"id": "r", "on": "customer.lapsed", "then": [{"offer": {"offer": "pony"}}]},
         "rule r: no offer 'pony' in settings.offers"),
        ({**task_rule(), "when": {"annual_value": {"at_least": {"setting": "nope"}}}},
         "rule r: unknown setting 'nope'"),
    ],
)
def test_a_rule_that_cannot_produce_its_action_raises_rule_error(
    rule: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError) as raised:
        run(lapsed(), None, rules_with(rule))
    assert message in str(raised.value)


def test_template_sandbox_refuses_unsafe_attribute_access() -> None:
    rule = task_rule(subject="{{ plan.__class__.__mro__ }}")
    with pytest.raises(RuleError):
        run(lapsed(), None, rules_with(rule))


def test_unknown_event_type_raises() -> None:
    event = lapsed().model_copy(update={"type": "crm.order.placed"})
    with pytest.raises(UnknownEventTypeError, match=r"crm\.order\.placed"):
        handle(event, None, default_rules(), datetime(2026, 11, 2, tzinfo=UTC))


def test_every_event_type_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(EVENT_TYPES)


# --- the catalogue ------------------------------------------------------------------------------------

def _sample(event_type: str) -> tuple[Event, Plan, dict[str, Any]]:
    plan = plan_of(run(lapsed(), None, default_rules()))
    derived: dict[str, dict[str, Any]] = {
        LAPSED: {"plan_reused": False}, COMPLAINT: {"repeat_complaint": False},
        MEETING: {"movement": None, "previous_sentiment": None, "added_experiences": []},
    }
    event = {LAPSED: lapsed(), COMPLAINT: complaint(),
             MEETING: meeting("m1", "2026-11-06T11:00")}[event_type]
    return event, plan, derived[event_type]


@pytest.mark.parametrize("event_type", CRM_EVENT_TYPES)
def test_template_context_has_exactly_the_catalogued_variables(event_type: str) -> None:
    event, plan, derived = _sample(event_type)
    context = template_context(event, plan, default_rules().settings,
                               datetime(2026, 11, 6, tzinfo=UTC), derived)
    assert set(context) == template_variables(event_type)
    assert template_variables(event_type.removeprefix("crm.")) == template_variables(event_type)


@pytest.mark.parametrize("event_type", CRM_EVENT_TYPES)
def test_condition_context_has_every_catalogued_field(event_type: str) -> None:
    event, plan, derived = _sample(event_type)
    assert condition_fields(event_type) <= set(condition_context(event, plan, derived))


@pytest.mark.parametrize(
    ("event_type", "names"),
    [
        ("customer.lapsed", {"annual_value", "do_not_contact", "competitor", "plan.stage"}),
        ("complaint.logged", {"severity", "summary", "repeat_complaint", "plan.apology"}),
        ("meeting.held", {"outcome", "sentiment", "movement", "plan.checkins_without_movement"}),
    ],
)
def test_condition_fields_name_event_fields_derived_facts_and_plan_fields(
    event_type: str, names: set[str]
) -> None:
    assert names <= condition_fields(event_type)


def test_catalogue_rejects_an_unknown_event_type() -> None:
    with pytest.raises(UnknownEventTypeError):
        condition_fields("order.placed")


# --- stories -----------------------------------------------------------------------------------------

def _step(event: Event, plan: Plan | None) -> Outcome:
    return handle(event, plan, default_rules(), later(event, minutes=2))


def test_story_lapse_complaints_interview_check_ins_and_revival_write_exactly_this() -> None:
    steps: list[tuple[Event, list[tuple[str, str]], str]] = [
        (lapsed(competitor="Contoso Support"), [
            ("CreateTask", "ACC-1#1:discovery"),
            ("CreateTask", "ACC-1#1:write-it-down.1"),
            ("CreateTask", "ACC-1#1:write-it-down.2"),
            ("CreateTask", "ACC-1#1:write-it-down.3"),
            ("CreateTask", "ACC-1#1:offer-incentive-when-lost-to-competitor"),
        ], "discovering"),
        (complaint(severity="high", complaint_id="CMP-77"), [
            ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-77"),
            ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-77:timer"),
            ("CreateTask", "ACC-1#1:escalate-severe-complaints:CMP-77"),
            ("DraftEmail", "ACC-1#1:apology"),
            ("CreateTask", "ACC-1#1:apology:review"),
        ], "discovering"),
        (complaint(event_id="evt-c2", complaint_id="CMP-81", at="2026-11-05T15:30"), [
            ("CreateTask", "ACC-1#1:acknowledge-within-sla:CMP-81"),
            ("PublishEvent", "timer:ACC-1#1:acknowledge-within-sla:CMP-81:timer"),
            ("CreateTask", "ACC-1#1:apologise-once:CMP-81:no-second-apology"),
        ], "discovering"),
        (meeting("m1", "2026-11-09T14:00", kind="exit_interview", sentiment=-2,
                 desired_result="Renews in Q1", target_beliefs=["Support answers fast"],
                 new_experiences=["Named support engineer"], feedback=["Status per region"]), [
            ("CreateTask", "ACC-1#1:create-new-experiences:MTG-m1:1"),
            ("CreateTask", "ACC-1#1:feedback-to-marketing-and-product.1:MTG-m1"),
            ("PublishEvent", "ACC-1#1:feedback-to-marketing-and-product.2:MTG-m1:winback.feedback"),
            ("ScheduleCheckIn", "ACC-1#1:checkin:1"), ("PublishEvent", "timer:ACC-1#1:checkin:1:timer"),
        ], "re-engaging"),
        (meeting("m2", "2026-11-16T14:00", sentiment=-2), [
            ("SetCheckInStatus:done", "ACC-1#1:checkin:1"),
            ("ScheduleCheckIn", "ACC-1#1:checkin:2"), ("PublishEvent", "timer:ACC-1#1:checkin:2:timer"),
        ], "checking-in"),
        (meeting("m3", "2026-12-09T14:00", sentiment=0), [
            ("SetCheckInStatus:done", "ACC-1#1:checkin:2"),
            ("ScheduleCheckIn", "ACC-1#1:checkin:3"), ("PublishEvent", "timer:ACC-1#1:checkin:3:timer"),
        ], "checking-in"),
        (meeting("m4", "2027-01-08T14:00", sentiment=2, outcome="revived"), [
            ("SetCheckInStatus:done", "ACC-1#1:checkin:3"),
            ("CreateTask", "ACC-1#1:follow-up:won"),
        ], "won"),
    ]
    plan: Plan | None = None
    for event, expected, stage in steps:
        outcome = _step(event, plan)
        assert written(outcome) == [*expected, ("SavePlan", "ACC-1#1")], event.id
        assert outcome.suppressed == () or event.id == "evt-c2", event.id
        plan = plan_of(outcome)
        assert plan.stage == stage, event.id
    assert plan is not None
    assert [(m.sentiment, m.movement) for m in plan.meetings] == [
        (-2, None), (-2, 0), (0, 2), (2, 2)]
    assert [(c.slot, c.start_at.date().isoformat(), c.status) for c in plan.checkins] == [
        (1, "2026-11-16", "done"), (2, "2026-12-09", "done"), (3, "2027-01-08", "done")]
    assert [s.key for s in plan.suppressed] == ["ACC-1#1:apology"]
    assert (plan.outcome, plan.closing_reason) == ("won", "revived at the check-in on 2027-01-08")


def test_story_second_account_is_lost_after_three_check_ins_without_movement() -> None:
    plan = plan_of(_step(lapsed(account_id="ACC-2", account_name="Tailspin Toys",
                                annual_value=15000), None))
    steps = [
        (meeting("t0", "2026-11-06T11:00", account_id="ACC-2", kind="exit_interview",
                 sentiment=-1), [("ScheduleCheckIn", "ACC-2#1:checkin:1"),
                                 ("PublishEvent", "timer:ACC-2#1:checkin:1:timer")], "planning"),
        (meeting("t1", "2026-11-13T11:00", account_id="ACC-2", sentiment=-1),
         [("SetCheckInStatus:done", "ACC-2#1:checkin:1"), ("ScheduleCheckIn", "ACC-2#1:checkin:2"),
          ("PublishEvent", "timer:ACC-2#1:checkin:2:timer")],
         "checking-in"),
        (meeting("t2", "2026-12-06T11:00", account_id="ACC-2", sentiment=-1),
         [("SetCheckInStatus:done", "ACC-2#1:checkin:2"), ("ScheduleCheckIn", "ACC-2#1:checkin:3"),
          ("PublishEvent", "timer:ACC-2#1:checkin:3:timer")],
         "checking-in"),
        (meeting("t3", "2027-01-05T11:00", account_id="ACC-2", sentiment=-2),
         [("SetCheckInStatus:done", "ACC-2#1:checkin:3")], "lost"),
    ]
    for event, expected, stage in steps:
        outcome = _step(event, plan)
        assert written(outcome) == [*expected, ("SavePlan", "ACC-2#1")], event.id
        plan = plan_of(outcome)
        assert plan.stage == stage, event.id
    assert (plan.checkins_without_movement, plan.closing_reason) == (
        3, "no positive movement in 3 check-ins in a row")
    assert [t.rule_id for t in outcome.trace if t.matched] == ["move-on-without-movement"]
    after = _step(meeting("t4", "2027-02-01T11:00", account_id="ACC-2", sentiment=-1), plan)
    assert [a for a in after.actions if not isinstance(a, SavePlan)] == []
    assert [s.reason for s in after.suppressed] == [
        "letting them go: no new plan, apology or offer within 180 days of a lost plan "
        "(ACC-2#1 closed 2027-01-05; cool-off until 2027-07-04)"]


def test_story_lost_plan_with_a_pending_check_in_cancels_it() -> None:
    plan = plan_of(_step(lapsed(), None))
    plan = plan_of(_step(meeting("m0", "2026-11-06T11:00", kind="exit_interview"), plan))
    outcome = _step(meeting("m1", "2026-11-08T11:00", kind="catch_up", outcome="declined"), plan)
    assert written(outcome) == [("SetCheckInStatus:cancelled", "ACC-1#1:checkin:1"), ("SavePlan", "ACC-1#1")]
    # After the cool-off (180 days from 2026-11-08), a new lapse opens a new plan.
    assert isinstance(one_task(_step(lapsed(event_id="evt-new", at="2027-06-01T09:00"),
                                     plan_of(outcome)), "discovery"), CreateTask)


def test_every_outcome_that_writes_claims_the_next_plan_revision() -> None:
    # Even a write that leaves the plan as it was saves it one revision on, so two workers writing
    # for the same account at once cannot both commit (the second revision claim is refused).
    plan = Plan(key="ACC-1#1", account_id="ACC-1", seq=1, stage="discovering",
                opened_at=datetime(2026, 11, 22, tzinfo=UTC), opened_by="evt-1", revision=4)
    task = CreateTask(key="ACC-1#1:note", plan_key="ACC-1#1", account_id="ACC-1", kind="feedback",
                      subject="s", description="d", owner_id="USR-1", due_at=None, priority="normal",
                      provenance=Provenance("evt-2", "r", "v1"))
    outcome = finish([task], plan, plan, [], [])
    assert outcome.actions == (task, SavePlan(plan.model_copy(update={"revision": 5})))
    assert finish([], plan, plan, [], []).actions == (), "nothing written, nothing saved"
