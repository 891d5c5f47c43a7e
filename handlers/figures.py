"""Figures that say whether the method works, computed from plans and their acknowledgement tasks.

Pure: the caller reads plans and tasks from the CRM and passes them in with the period to count.
A plan belongs to the period when it was opened at or after ``since``; its outcome, meetings and
complaints are counted with it, so each row follows a cohort of lapses to wherever they got.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Literal

from handlers.plan import Meeting, Plan

GroupBy = Literal["all", "owner", "segment", "rule"]
ACKNOWLEDGEMENT_KIND = "acknowledgement"
CHECK_IN_KIND = "check_in"
DISCOVERY_MEETING = "exit_interview"
_RECORD_SUFFIX = re.compile(r"\s*\([^()]*[#:][^()]*\)$")


@dataclass(frozen=True)
class TaskView:
    """One task as the figures need it: its plan, kind, rule, due time and completion time."""

    plan_key: str
    kind: str
    rule_id: str
    due_at: datetime | None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Figures:
    """The method's figures for one group of plans. Durations are medians, ``None`` when no case."""

    group: str
    opened: int = 0
    won: int = 0
    lost: int = 0
    open_by_stage: dict[str, int] = field(default_factory=dict)
    win_rate: float | None = None  # won / (won + lost): of the plans that ended, how many came back
    days_to_win: float | None = None
    hours_to_first_contact: float | None = None
    sla_met: int = 0
    sla_late: int = 0
    sla_not_yet: int = 0
    checkins_held: int = 0  # check-in slots kept, of those scheduled on the cadence
    checkins_scheduled: int = 0
    movement_share: float | None = None  # check-ins that moved the customer up / check-ins measured
    suppressions: dict[str, int] = field(default_factory=dict)  # "reason (rule)" -> count

    @property
    def sla_attainment(self) -> float | None:
        """Acknowledged within the SLA, of the complaints acknowledged or due so far."""
        decided = self.sla_met + self.sla_late
        return self.sla_met / decided if decided else None


def _owner(plan: Plan) -> str:
    return plan.owner_id or "(no owner)"


def _segment(plan: Plan) -> str:
    return plan.approach or "(not segmented)"


def _opening_rule(plan: Plan) -> str:
    # The first history entry is the plan's opening; later ones say what each rule added.
    return plan.history[0].rule_id if plan.history else "(unknown)"


_KEYS: dict[GroupBy, Callable[[Plan], str]] = {
    "all": lambda _plan: "all", "owner": _owner, "segment": _segment, "rule": _opening_rule,
}


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def _median(values: Sequence[float]) -> float | None:
    return round(median(values), 2) if values else None


def _first_contact(plan: Plan) -> float | None:
    held = [m.held_at for m in plan.meetings if m.kind == DISCOVERY_MEETING]
    return _hours(plan.opened_at, min(held)) if held else None


def general_reason(reason: str) -> str:
    # Reasons end with the record they concern, "(ACC-1#1:apology)": drop it so reasons add up.
    return _RECORD_SUFFIX.sub("", reason)


def _while_open(plan: Plan) -> list[Meeting]:
    # A meeting recorded after the plan closed is history, not the method's doing.
    return [m for m in plan.meetings if plan.closed_at is None or m.held_at <= plan.closed_at]


def _sla(tasks: Iterable[TaskView], now: datetime) -> Counter[str]:
    verdicts: Counter[str] = Counter()
    for task in tasks:
        if task.completed_at is not None:
            on_time = task.due_at is None or task.completed_at <= task.due_at
            verdicts["met" if on_time else "late"] += 1
        elif task.due_at is not None and task.due_at < now:
            verdicts["late"] += 1  # not acknowledged and already past the SLA: it cannot be met
        else:
            verdicts["not_yet"] += 1
    return verdicts


@dataclass(frozen=True)
class Acknowledgements:
    """One plan's complaint acknowledgements as its report fields keep them (``Acks_*__c``)."""

    acknowledged_at: datetime | None = None  # the latest acknowledgement task's completion
    in_sla: int = 0
    late: int = 0
    pending: int = 0


def acknowledgements(plans: Iterable[Plan], tasks: Iterable[TaskView], now: datetime
                     ) -> dict[str, Acknowledgements]:
    """Per plan key, its acknowledgement tasks counted as the SLA figures count them; every plan
    has an entry (all zero without complaints), so a stored value that went stale is corrected."""
    acks: dict[str, list[TaskView]] = {plan.key: [] for plan in plans}
    for task in tasks:
        if task.kind == ACKNOWLEDGEMENT_KIND and task.plan_key in acks:
            acks[task.plan_key].append(task)
    out = {}
    for key, views in acks.items():
        sla = _sla(views, now)
        done = [t.completed_at for t in views if t.completed_at is not None]
        out[key] = Acknowledgements(max(done, default=None), sla["met"], sla["late"],
                                    sla["not_yet"])
    return out


def _group_figures(group: str, plans: Sequence[Plan], acks: Sequence[TaskView],
                   now: datetime) -> Figures:
    won = [p for p in plans if p.outcome == "won"]
    lost = sum(1 for p in plans if p.outcome == "lost")
    stages = Counter(p.stage for p in plans if p.is_open)
    contact = [h for h in map(_first_contact, plans) if h is not None]
    measured = [m for p in plans for m in _while_open(p)
                if m.kind == CHECK_IN_KIND and m.movement is not None]
    sla = _sla(acks, now)
    suppressed = Counter(f"{general_reason(s.reason)} ({s.rule_id})" for p in plans for s in p.suppressed)
    return Figures(
        group=group, opened=len(plans), won=len(won), lost=lost,
        open_by_stage=dict(sorted(stages.items())),
        win_rate=round(len(won) / (len(won) + lost), 4) if won or lost else None,
        days_to_win=_median([_hours(p.opened_at, p.closed_at) / 24 for p in won if p.closed_at]),
        hours_to_first_contact=_median(contact),
        sla_met=sla["met"], sla_late=sla["late"], sla_not_yet=sla["not_yet"],
        checkins_held=sum(p.checkins_done for p in plans),
        checkins_scheduled=sum(len(p.checkins) for p in plans),
        movement_share=(round(sum(1 for m in measured if (m.movement or 0) > 0) / len(measured), 4)
                        if measured else None),
        suppressions=dict(sorted(suppressed.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def compute_figures(plans: Iterable[Plan], tasks: Iterable[TaskView], now: datetime,
                    since: datetime | None = None, by: GroupBy = "all") -> list[Figures]:
    """One ``Figures`` per group (sorted by name), over the plans opened at or after ``since``."""
    chosen = [p for p in plans if since is None or p.opened_at >= since]
    acks: dict[str, list[TaskView]] = {}
    for task in tasks:
        if task.kind == ACKNOWLEDGEMENT_KIND:
            acks.setdefault(task.plan_key, []).append(task)
    key = _KEYS[by]
    groups: dict[str, list[Plan]] = {}
    for plan in chosen:
        groups.setdefault(key(plan), []).append(plan)
    return [
        _group_figures(name, members, [t for p in members for t in acks.get(p.key, [])], now)
        for name, members in sorted(groups.items())
    ]


def outcomes_by_month(plans: Iterable[Plan], since: datetime | None = None) -> dict[str, tuple[int, int]]:
    """(won, lost) per month the plans closed in, "2026-11" → (1, 0), oldest month first."""
    months: dict[str, list[int]] = {}
    for plan in plans:
        if plan.closed_at is None or plan.outcome is None or (since and plan.opened_at < since):
            continue
        counts = months.setdefault(f"{plan.closed_at:%Y-%m}", [0, 0])
        counts[0 if plan.outcome == "won" else 1] += 1
    return {month: (won, lost) for month, (won, lost) in sorted(months.items())}
