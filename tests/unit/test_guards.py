"""Don't be annoying: which outreach the guards block, and why, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.guards import Proposed, check, cooling_off
from handlers.plan import Contact, Plan
from handlers.rules.model import ContactBudget, RuleSettings

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
BUDGET = RuleSettings(contact_budget=ContactBudget(max_actions=2, per_days=30),
                      move_on_cooloff_days=180)


def lost(days_ago: float, **fields: Any) -> dict[str, Any]:
    """A plan closed as lost ``days_ago`` days before AT."""
    return {"stage": "lost", "outcome": "lost", "closed_at": AT - timedelta(days=days_ago), **fields}


def plan(**fields: Any) -> Plan:
    base: dict[str, Any] = {"key": "A#1", "account_id": "A", "seq": 1, "stage": "discovering",
                            "opened_at": AT - timedelta(days=40), "opened_by": "evt-0"}
    return Plan.model_validate({**base, **fields})


def contacts(*days_ago: float) -> tuple[Contact, ...]:
    return tuple(Contact(at=AT - timedelta(days=d), kind="offer", key=f"A#1:old{n}")
                 for n, d in enumerate(days_ago))


@pytest.mark.parametrize(
    ("kind", "fields", "code"),
    [
        # internal work is never blocked, whatever the plan says
        ("prompt", {"stage": "lost", "do_not_contact": True}, None),
        ("acknowledgement", {"do_not_contact": True, "contacts": contacts(1, 2, 3)}, None),
        ("follow_up", {"stage": "won"}, None),
        ("note", {"apology": "drafted"}, None),
        # every outreach kind is blocked by a closed plan and by do-not-contact
        *((kind, {"stage": "lost"}, "closed_plan") for kind in
          ("discovery", "outreach", "offer", "survey", "apology", "check_in")),
        *((kind, {"stage": "won"}, "closed_plan") for kind in ("offer", "check_in")),
        *((kind, {"do_not_contact": True}, "do_not_contact") for kind in
          ("discovery", "outreach", "offer", "survey", "apology", "check_in")),
        # discovery (in person or by survey) and the apology happen once per plan
        ("discovery", {"discovery": "open"}, "once_per_plan"),
        ("discovery", {"discovery": "done"}, "once_per_plan"),
        ("survey", {"discovery": "open"}, "once_per_plan"),
        ("discovery", {"discovery": "none"}, None),
        ("apology", {"apology": "drafted"}, "once_per_plan"),
        ("apology", {"apology": "none"}, None),
        # the same key again is not a new contact
        ("offer", {"contacts": (Contact(at=AT, kind="offer", key="A#1:x"),)}, "already_done"),
        # contact budget: at most 2 in the 30 days before the action
        ("offer", {"contacts": contacts(1)}, None),
        ("offer", {"contacts": contacts(1, 29.9)}, "budget"),
        ("offer", {"contacts": contacts(1, 30)}, None),  # exactly 30 days ago is outside
        ("offer", {"contacts": contacts(1, 31, 45, 90)}, None),
        ("check_in", {"contacts": contacts(0, 0)}, "budget"),
        ("offer", {"contacts": contacts(-1, -2)}, None),  # contacts after this one don't count
        # let them go: after a lost plan, no outreach for the cool-off, and it says why
        *((kind, lost(10), "cooling_off") for kind in
          ("discovery", "outreach", "offer", "survey", "apology", "check_in")),
        ("apology", lost(179.9), "cooling_off"),
        ("apology", lost(180), "closed_plan"),  # the cool-off is over; the lost plan stays closed
        ("apology", lost(10, do_not_contact=True), "cooling_off"),
        ("acknowledgement", lost(10), None),  # service is owed: internal work is never blocked
        ("escalation", lost(10), None),
        ("apology", {"stage": "won", "outcome": "won", "closed_at": AT - timedelta(days=10)},
         "closed_plan"),  # only a lost plan cools off
    ],
)
def test_guards_block_outreach_for_the_first_reason_that_applies(
    kind: str, fields: dict[str, Any], code: str | None
) -> None:
    blocked = check(Proposed(kind, "A#1:x", AT), plan(**fields), BUDGET)
    assert (blocked.code if blocked else None) == code


def test_closed_plan_is_reported_before_do_not_contact() -> None:
    blocked = check(Proposed("offer", "A#1:x", AT), plan(stage="lost", do_not_contact=True), BUDGET)
    assert blocked is not None
    assert blocked.reason == "the plan is closed (lost): no outreach follows"


def test_zero_budget_blocks_all_outreach_with_the_numbers_in_the_reason() -> None:
    blocked = check(Proposed("offer", "A#1:x", AT), plan(),
                    RuleSettings(contact_budget=ContactBudget(max_actions=0)))
    assert blocked is not None
    assert blocked.reason == (
        "contact budget reached: 0 outreach actions in the 30 days before "
        "2026-11-20T12:00:00+00:00 (at most 0)")


def test_once_per_plan_reason_names_the_earlier_apology() -> None:
    blocked = check(Proposed("apology", "A#1:apology", AT),
                    plan(apology="drafted", apology_key="A#1:apology"), BUDGET)
    assert blocked is not None
    assert blocked.reason == "already apologised once on this plan (A#1:apology)"



def test_a_plan_paused_in_the_crm_gets_no_outreach_and_says_so() -> None:
    blocked = check(Proposed("apology", "k", datetime(2026, 12, 1, tzinfo=UTC)), plan(paused=True), BUDGET)
    assert blocked is not None
    assert blocked.code == "paused"
    assert "paused in the CRM" in blocked.reason


@pytest.mark.parametrize(
    ("days_ago", "cooloff", "blocked"),
    [(0, 180, True), (179, 180, True), (180, 180, False), (400, 180, False),
     (1, 0, False), (29, 30, True), (31, 30, False)],
)
def test_the_cool_off_counts_from_when_the_plan_closed_as_lost(
    days_ago: int, cooloff: int, blocked: bool
) -> None:
    assert (cooling_off(plan(**lost(days_ago)), AT, cooloff) is not None) is blocked


def test_the_cool_off_reason_names_the_plan_the_dates_and_the_days() -> None:
    blocked = cooling_off(plan(**lost(10)), AT, 180)
    assert blocked is not None
    assert blocked.reason == (
        "letting them go: no new plan, apology or offer within 180 days of a lost plan "
        "(A#1 closed 2026-11-10; cool-off until 2027-05-09)")
