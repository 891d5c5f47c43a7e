"""The method's figures from hand-made plans, checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.figures import (
    Acknowledgements,
    Figures,
    TaskView,
    acknowledgements,
    compute_figures,
    outcomes_by_month,
)
from handlers.plan import Change, CheckIn, Meeting, Plan, Suppression

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _meeting(n: int, days: float, kind: str = "check_in", movement: int | None = None) -> Meeting:
    return Meeting(meeting_id=f"M{n}", held_at=T0 + timedelta(days=days), kind=kind, movement=movement)


def _plan(account: str, owner: str, approach: str | None, **more: Any) -> Plan:
    return Plan(key=f"{account}#1", account_id=account, seq=1, stage=more.pop("stage", "discovering"),
                opened_at=more.pop("opened_at", T0), opened_by="e1", owner_id=owner, approach=approach,
                history=(Change(at=T0, event_id="e1", rules_version="v1",
                                rule_id=more.pop("rule", "method"), what="opened"),),
                **more)


def _checkins(done: int, pending: int) -> tuple[CheckIn, ...]:
    statuses = ["done"] * done + ["pending"] * pending
    return tuple(CheckIn(slot=i, key=f"k{i}", start_at=T0, status=s)  # type: ignore[arg-type]
                 for i, s in enumerate(statuses, 1))


WON = _plan("A", "USR-A", "individual", stage="won", outcome="won", closed_at=T0 + timedelta(days=10),
            meetings=(_meeting(1, 0.5, "exit_interview"), _meeting(2, 3, movement=-1),
                      _meeting(3, 6, movement=2)),
            checkins=_checkins(2, 1),
            suppressed=(Suppression(at=T0, event_id="e2", rule_id="budget", action="task",
                                    key="x", reason="contact budget spent (A#1:offer)"),))
LOST = _plan("B", "USR-A", "individual", stage="lost", outcome="lost", closed_at=T0 + timedelta(days=30),
             meetings=(_meeting(4, 2, "exit_interview"), _meeting(5, 9, movement=0),
                       _meeting(6, 16, movement=-1), _meeting(7, 40, movement=3)),  # after it closed
             checkins=_checkins(2, 1))
OPEN = _plan("C", "USR-B", "survey", stage="checking-in", rule="survey-low-value")
OLD = _plan("D", "USR-B", None, opened_at=T0 - timedelta(days=60), stage="won", outcome="won")
TASKS = [
    TaskView("A#1", "acknowledgement", "ack", T0 + timedelta(minutes=20), T0 + timedelta(minutes=5)),
    TaskView("A#1", "acknowledgement", "ack", T0 + timedelta(minutes=20), T0 + timedelta(hours=2)),
    TaskView("C#1", "acknowledgement", "ack", NOW + timedelta(minutes=10)),  # not yet due
    TaskView("B#1", "acknowledgement", "ack", NOW - timedelta(minutes=1)),  # open past its SLA
    TaskView("A#1", "discovery", "method", T0, T0),  # not an acknowledgement: not counted
]


def test_all_plans_since_a_date_give_the_hand_computed_figures() -> None:
    [f] = compute_figures([WON, LOST, OPEN, OLD], TASKS, NOW, since=T0 - timedelta(days=1))
    assert f == Figures(
        group="all", opened=3, won=1, lost=1, open_by_stage={"checking-in": 1}, win_rate=0.5,
        days_to_win=10.0, hours_to_first_contact=30.0,  # median of 12 h and 48 h
        sla_met=1, sla_late=2, sla_not_yet=1, checkins_held=4, checkins_scheduled=6,
        movement_share=0.25, suppressions={"contact budget spent (budget)": 1})
    assert f.sla_attainment == pytest.approx(1 / 3)


@pytest.mark.parametrize(("by", "expected"), [
    ("owner", {"USR-A": (2, 1, 1, 1, 2), "USR-B": (2, 1, 0, 0, 0)}),
    ("segment", {"individual": (2, 1, 1, 1, 2), "survey": (1, 0, 0, 0, 0),
                 "(not segmented)": (1, 1, 0, 0, 0)}),
    ("rule", {"method": (3, 2, 1, 1, 2), "survey-low-value": (1, 0, 0, 0, 0)}),
])
def test_grouping_splits_plans_and_their_acknowledgements(by: Any, expected: dict[str, Any]) -> None:
    rows = compute_figures([WON, LOST, OPEN, OLD], TASKS, NOW, by=by)
    got = {f.group: (f.opened, f.won, f.lost, f.sla_met, f.sla_late) for f in rows}
    assert got == expected


def test_no_plans_gives_no_rows_and_no_closed_plans_no_rate() -> None:
    assert compute_figures([], TASKS, NOW) == []
    [f] = compute_figures([OPEN], [], NOW)
    assert (f.win_rate, f.days_to_win, f.movement_share, f.sla_attainment) == (None, None, None, None)


def test_won_and_lost_count_in_the_month_each_plan_closed() -> None:
    old = OLD.model_copy(update={"closed_at": T0 - timedelta(days=20)})
    assert outcomes_by_month([WON, LOST, OPEN, old]) == {"2026-10": (1, 0), "2026-11": (1, 0),
                                                         "2026-12": (0, 1)}
    assert outcomes_by_month([WON, LOST, old], since=T0) == {"2026-11": (1, 0), "2026-12": (0, 1)}


# --- each plan's acknowledgement fields (what the figure sampler writes onto the plan) ---------

def test_each_plan_gets_its_acknowledgements_counted_as_the_sla_figures_count_them() -> None:
    orphan = TaskView("Z#1", "acknowledgement", "ack", T0, T0)  # a plan that is not in the list
    assert acknowledgements([WON, LOST, OPEN, OLD], [*TASKS, orphan], NOW) == {
        # two acknowledged: at 09:05 within its SLA, at 11:00 late; the latest completion is kept
        "A#1": Acknowledgements(T0 + timedelta(hours=2), in_sla=1, late=1, pending=0),
        "B#1": Acknowledgements(None, in_sla=0, late=1, pending=0),  # still open, past its due time
        "C#1": Acknowledgements(None, in_sla=0, late=0, pending=1),  # open, not yet due
        "D#1": Acknowledgements(),  # no complaints: every field empty, so a stale value is cleared
    }


@pytest.mark.parametrize(("completed", "now", "expected"), [
    (T0 + timedelta(minutes=20), NOW, (1, 0, 0)),  # on the due minute: still within the SLA
    (T0 + timedelta(minutes=21), NOW, (0, 1, 0)),
    (None, T0 + timedelta(minutes=19), (0, 0, 1)),
    (None, T0 + timedelta(minutes=21), (0, 1, 0)),  # the clock alone turns pending into late
], ids=["on-time", "late", "pending", "overdue"])
def test_one_acknowledgement_is_in_sla_late_or_pending(completed: datetime | None, now: datetime,
                                                       expected: tuple[int, int, int]) -> None:
    task = TaskView("A#1", "acknowledgement", "ack", T0 + timedelta(minutes=20), completed)
    acks = acknowledgements([WON], [task], now)["A#1"]
    assert (acks.in_sla, acks.late, acks.pending) == expected
    assert acks.acknowledged_at == completed
