"""A plan's timeline: newest first, each line naming the event, the rule and what happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from handlers.actions import PublishEvent
from handlers.events import Event, parse_event
from handlers.plan import Change, Plan, Timer
from handlers.registry import handle
from handlers.timeline import timeline, timeline_text
from handlers.timer import with_observed
from tests.unit.rulesets import complaint, default_rules, lapsed, plan_of
from tests.unit.test_figures import T0, WON


def _change(minutes: int, what: str, rule: str = "method") -> Change:
    return Change(at=T0 + timedelta(minutes=minutes), event_id=f"e{minutes}", rules_version="v1",
                  rule_id=rule, what=what)


PLAN = WON.model_copy(update={"history": (
    _change(0, "opened"), _change(0, "discovery task written", "know-why-they-left"),
    _change(30, "suppressed apology A#1:apology: already apologised", "apologise-once"))})


def test_newest_first_and_later_recorded_first_at_the_same_moment() -> None:
    assert [(e.event_id, e.rule_id, e.what) for e in timeline(PLAN)] == [
        ("e30", "apologise-once", "suppressed apology A#1:apology: already apologised"),
        ("e0", "know-why-they-left", "discovery task written"),
        ("e0", "method", "opened"),
    ]


def test_text_names_time_event_and_rule_and_is_cut_to_its_field_size() -> None:
    assert timeline_text(PLAN).splitlines()[0] == (
        "2026-11-02 09:30 e30 [apologise-once] suppressed apology A#1:apology: already apologised")
    cut = timeline_text(PLAN, limit=60)
    assert len(cut) <= 60
    assert cut.endswith("…")


# --- when each line happened: the event's time, never the worker's clock -----------------------

def _handled_three_hours_late(event: Event, plan: Plan | None = None) -> Plan:
    assert event.time is not None
    return plan_of(handle(event, plan, default_rules(), event.time + timedelta(hours=3)))


def test_lines_carry_the_time_the_event_happened_not_when_the_worker_handled_it() -> None:
    opened = _handled_three_hours_late(lapsed(at="2026-11-02T09:00"))
    plan = _handled_three_hours_late(complaint(at="2026-11-03T10:00"), opened)
    times = {(e.event_id, e.at) for e in timeline(plan)}
    assert times == {("evt-lapsed", datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
                     ("evt-complaint", datetime(2026, 11, 3, 10, 0, tzinfo=UTC)),
                     # the acknowledgement's timer, still pending: at the time it fires
                     ("timer:ACC-1#1:acknowledge-within-sla:CMP-1:timer",
                      datetime(2026, 11, 3, 10, 20, tzinfo=UTC))}
    assert {s.at for s in plan.suppressed} <= {t for _, t in times}


def test_an_event_without_a_time_falls_back_to_when_the_complaint_was_logged() -> None:
    opened = _handled_three_hours_late(lapsed(at="2026-11-02T09:00"))
    untimed = complaint(at="2026-11-03T10:00").model_copy(update={"time": None})
    plan = plan_of(handle(untimed, opened, default_rules(), datetime(2026, 11, 4, tzinfo=UTC)))
    assert {e.at for e in timeline(plan) if e.event_id == untimed.id} == {
        datetime(2026, 11, 3, 10, 0, tzinfo=UTC)}


def test_a_replayed_event_gets_the_same_lines_at_the_same_times() -> None:
    first = _handled_three_hours_late(lapsed(at="2026-11-02T09:00"))
    event = lapsed(at="2026-11-02T09:00")
    again = plan_of(handle(event, None, default_rules(), datetime(2026, 12, 24, tzinfo=UTC)))
    assert timeline_text(again) == timeline_text(first)


def test_a_timer_without_a_time_happened_at_its_deadline() -> None:
    opened = _handled_three_hours_late(lapsed(at="2026-11-02T09:00"))
    outcome = handle(complaint(at="2026-11-03T10:00"), opened, default_rules(),
                     datetime(2026, 11, 3, 10, 1, tzinfo=UTC))
    (timer,) = [a for a in outcome.actions if isinstance(a, PublishEvent) and a.due_at]
    event = parse_event(json.dumps(timer.payload))
    assert event.time is None  # the worker's own timers carry their due time in their data
    late = handle(with_observed(event, "open"), plan_of(outcome), default_rules(),
                  datetime(2026, 11, 3, 13, 0, tzinfo=UTC))
    assert {e.at for e in timeline(plan_of(late)) if e.event_id == event.id} == {timer.due_at}


def test_a_pending_timer_shows_at_the_time_it_fires_and_leaves_once_it_has() -> None:
    ahead = Timer(key="A#1:ack:timer", kind="unless_done", step_key="A#1:ack",
                  due_at=T0 + timedelta(hours=1), rule_id="acknowledge-within-sla")
    checkin = Timer(key="A#1:checkin:1:timer:2", kind="unless_held", step_key="A#1:checkin:1",
                    due_at=T0 + timedelta(hours=2), rule_id="next-checkin", round=2)
    fired = ahead.model_copy(update={"key": "A#1:old:timer", "status": "acted"})
    plan = PLAN.model_copy(update={"timers": (ahead, checkin, fired), "stage": "checking-in"})
    assert [(e.at, e.event_id, e.rule_id, e.what) for e in timeline(plan)[:3]] == [
        (T0 + timedelta(hours=2), "timer:A#1:checkin:1:timer:2", "next-checkin",
         "timer pending: checks that A#1:checkin:1 was held (round 2)"),
        (T0 + timedelta(hours=1), "timer:A#1:ack:timer", "acknowledge-within-sla",
         "timer pending: checks that A#1:ack is done"),
        (T0 + timedelta(minutes=30), "e30", "apologise-once",
         "suppressed apology A#1:apology: already apologised"),
    ]


def test_a_closed_plan_shows_only_the_timers_that_will_still_act() -> None:
    # A complaint in the cool-off after a lost plan: its acknowledgement is owed, so its timer acts
    # (handlers/timer.py) and is shown; a check-in's timer on a closed plan does nothing.
    ack = Timer(key="A#1:ack:timer", kind="unless_done", step_key="A#1:ack",
                due_at=T0 + timedelta(hours=1), rule_id="acknowledge-within-sla")
    checkin = Timer(key="A#1:checkin:1:timer", kind="unless_held", step_key="A#1:checkin:1",
                    due_at=T0 + timedelta(hours=2), rule_id="next-checkin")
    closed = PLAN.model_copy(update={"timers": (ack, checkin), "stage": "lost"})
    assert [e.event_id for e in timeline(closed) if e.event_id.startswith("timer:")] == [
        "timer:A#1:ack:timer"]
    assert closed.waiting_timers == (ack,)
    opened = closed.model_copy(update={"stage": "checking-in"})
    assert [e.event_id for e in timeline(opened) if e.event_id.startswith("timer:")] == [
        "timer:A#1:checkin:1:timer", "timer:A#1:ack:timer"]


def _as_before(plan: Plan, limit: int = 32000) -> str:
    """The text as it was first written: each entry's time through strftime, from ``timeline``."""
    text = "\n".join(f"{e.at:%Y-%m-%d %H:%M} {e.event_id} [{e.rule_id}] {e.what}"
                     for e in timeline(plan))
    if len(text) <= limit:
        return text
    head = text[: limit - 2]
    return (head.rsplit("\n", 1)[0] if "\n" in head else head) + "\n…"


def _odd_plan() -> Plan:
    """Out-of-order history, ties, odd years and minutes, and a second-round timer pending."""
    moments = [T0 + timedelta(minutes=30), T0, T0, T0 + timedelta(seconds=59),
               datetime(999, 1, 2, 3, 4, tzinfo=UTC), datetime(1000, 12, 31, 23, 59, tzinfo=UTC),
               T0 + timedelta(minutes=30)]
    history = tuple(Change(at=at, event_id=f"e{n}", rules_version="v1", rule_id=f"r{n}",
                           what=f"what {n}\nsecond line") for n, at in enumerate(moments))
    timers = (Timer(key="K:timer:2", kind="unless_held", step_key="K", due_at=T0, rule_id="r9",
                    round=2),
              Timer(key="K:timer", kind="unless_done", step_key="K", due_at=T0, rule_id="r8",
                    status="met"))
    return WON.model_copy(update={"history": history, "timers": timers, "stage": "checking-in"})


def test_the_text_is_the_one_strftime_wrote_from_the_entries_for_every_kind_of_plan() -> None:
    event = lapsed(at="2026-11-02T09:00")
    opened = plan_of(handle(event, None, default_rules(), event.time or T0))
    later_plan = plan_of(handle(complaint(at="2026-11-03T10:00"), opened, default_rules(), T0))
    for plan in (PLAN, WON, opened, later_plan, _odd_plan()):
        for limit in (32000, 200, 61, 5):
            assert timeline_text(plan, limit) == _as_before(plan, limit)
    assert "999-01-02 03:04 e4 [r4] what 4" in timeline_text(_odd_plan()).splitlines()
