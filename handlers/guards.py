"""Don't be annoying: the checks that turn an outreach action into a recorded suppression.

Only outreach (``OUTREACH_KINDS``) is guarded: internal work for the owner, managers or marketing
is never suppressed, because it does not reach the customer.

Let them go: for ``move_on_cooloff_days`` after a plan closes as lost, ``cooling_off`` also keeps
a new event from opening a new plan (the handlers ask it), and outreach is blocked with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from handlers.actions import OUTREACH_KINDS
from handlers.plan import Plan
from handlers.rules.model import RuleSettings

GuardCode = Literal["cooling_off", "closed_plan", "paused", "do_not_contact", "once_per_plan",
                    "already_done", "budget"]

# Kinds the method allows once per plan, and the plan field that says it has happened.
DISCOVERY_KINDS: frozenset[str] = frozenset({"discovery", "survey"})


@dataclass(frozen=True)
class Blocked:
    """Why an outreach action is not written."""

    code: GuardCode
    reason: str


@dataclass(frozen=True)
class Proposed:
    """The outreach about to be written: its kind, its key, and when it reaches the customer."""

    kind: str
    key: str
    at: datetime


def cooling_off(plan: Plan, at: datetime, days: int) -> Blocked | None:
    """Blocked while ``plan`` closed as lost less than ``days`` days before ``at``."""
    if plan.outcome != "lost" or plan.closed_at is None:
        return None
    until = plan.closed_at + timedelta(days=days)
    if at >= until:
        return None
    # The record in parentheses at the end, so the report adds the same reason up across plans.
    return Blocked("cooling_off", f"letting them go: no new plan, apology or offer within {days} "
                   f"days of a lost plan ({plan.key} closed {plan.closed_at.date().isoformat()}; "
                   f"cool-off until {until.date().isoformat()})")


def _cooling_off(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    return cooling_off(plan, p.at, settings.move_on_cooloff_days)


def _closed_plan(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    if plan.is_open:
        return None
    return Blocked("closed_plan", f"the plan is closed ({plan.stage}): no outreach follows")


def _paused(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    if not plan.paused:
        return None
    return Blocked("paused", "the plan is paused in the CRM: no outreach until an owner resumes it")


def _do_not_contact(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    if not plan.do_not_contact:
        return None
    return Blocked("do_not_contact", "the customer is marked do-not-contact")


def _once_per_plan(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    if p.kind in DISCOVERY_KINDS and plan.discovery != "none":
        return Blocked("once_per_plan", f"already asked why they left (discovery {plan.discovery})")
    if p.kind == "apology" and plan.apology == "drafted":
        return Blocked("once_per_plan", f"already apologised once on this plan ({plan.apology_key})")
    return None


def _already_done(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    # The same step reported again (e.g. a second lapse while the plan is open) is not a new contact.
    for contact in plan.contacts:  # a loop, not any() over a generator: every outreach asks
        if contact.key == p.key:
            return Blocked("already_done", f"{p.key} was already written for this plan")
    return None


def _budget(p: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    budget = settings.contact_budget
    since, until, recent = p.at - timedelta(days=budget.per_days), p.at, 0
    for contact in plan.contacts:  # counted in a loop, not sum() over a generator
        if since < contact.at <= until:
            recent += 1
    if recent < budget.max_actions:
        return None
    return Blocked(
        "budget",
        f"contact budget reached: {recent} outreach actions in the {budget.per_days} days "
        f"before {p.at.isoformat()} (at most {budget.max_actions})",
    )


Guard = Callable[[Proposed, Plan, RuleSettings], Blocked | None]
# Order matters only for which reason is recorded: the most fundamental first (the cool-off
# before the closed plan, so a lost plan's complaint says why nothing reaches the customer).
GUARDS: tuple[Guard, ...] = (_cooling_off, _closed_plan, _paused, _do_not_contact, _once_per_plan,
                             _already_done, _budget)


def check(proposed: Proposed, plan: Plan, settings: RuleSettings) -> Blocked | None:
    """The first guard that blocks ``proposed``, or ``None`` when it may be written."""
    if proposed.kind not in OUTREACH_KINDS:
        return None
    for guard in GUARDS:
        blocked = guard(proposed, plan, settings)
        if blocked is not None:
            return blocked
    return None
