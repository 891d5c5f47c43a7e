"""What handling one event produced: the CRM actions, the new plan, and why each rule did or didn't fire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from handlers.actions import Action
from handlers.events import Event
from handlers.plan import Plan, Suppression
from handlers.rules.ruleset import RuleSet


@dataclass(frozen=True)
class RuleTrace:
    """One rule's verdict for one event: matched or not, and the reason in words."""

    rule_id: str
    matched: bool
    reason: str
    stopped: bool = False  # this rule had ``stop: true`` and ended evaluation
    skipped: bool = False  # not evaluated because an earlier rule stopped


@dataclass(frozen=True)
class Signal:
    """Something worth counting that only the handler knows, e.g. a timer that acted; the worker
    turns each into a metric (``worker.metrics``)."""

    name: Literal["timer_scheduled", "timer_fired", "sla_breach"]
    label: str  # the timer's kind, its outcome (met, acted, skipped, duplicate), or the breach's severity


@dataclass(frozen=True)
class Outcome:
    """Everything one event leads to. ``actions`` ends with ``SavePlan`` when the plan changed."""

    actions: tuple[Action, ...]
    plan: Plan | None
    trace: tuple[RuleTrace, ...] = ()
    suppressed: tuple[Suppression, ...] = ()
    signals: tuple[Signal, ...] = ()


Handler = Callable[[Event, Plan | None, RuleSet, datetime], Outcome]
