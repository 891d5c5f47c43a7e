"""``crm.customer.lapsed``: open the account's win-back plan (or reuse the open one), then the rules."""

from __future__ import annotations

from datetime import datetime

from handlers.context import anchor_time
from handlers.errors import InvalidEventError
from handlers.events import Event, LapsedData
from handlers.outcome import Outcome, RuleTrace
from handlers.pipeline import METHOD, finish, let_go, record, run_rules
from handlers.plan import Plan, amended, plan_key
from handlers.rules.ruleset import RuleSet


def lapsed_data(event: Event) -> LapsedData:
    if not isinstance(event.data, LapsedData):
        raise InvalidEventError(f"{event.type} event {event.id} does not carry lapse data")
    return event.data


def open_plan(event: Event, latest: Plan | None, rules: RuleSet, now: datetime,
              why: str) -> Plan:
    """A new plan after ``latest`` (closed plans stay as history), in the discovering stage."""
    data = event.data
    seq = latest.seq + 1 if latest is not None else 1
    plan = Plan(
        key=plan_key(data.account_id, seq), account_id=data.account_id, seq=seq,
        stage="discovering", opened_at=anchor_time(event, now), opened_by=event.id,
        account_name=getattr(data, "account_name", None), owner_id=getattr(data, "owner_id", None),
        contact_id=getattr(data, "contact_id", None),
        contact_name=getattr(data, "contact_name", None),
        contact_email=getattr(data, "contact_email", None),
        do_not_contact=bool(getattr(data, "do_not_contact", False)),
    )
    return record(plan, event, rules, now, METHOD, f"plan {plan.key} opened: {why}")


def _details(data: LapsedData, plan: Plan) -> dict[str, object]:
    # do-not-contact is sticky for the life of the plan: once asked, we never contact again.
    return {
        "account_name": data.account_name, "owner_id": data.owner_id or plan.owner_id,
        "contact_id": data.contact_id or plan.contact_id,
        "contact_name": data.contact_name or plan.contact_name,
        "contact_email": data.contact_email or plan.contact_email,
        "annual_value": data.annual_value, "currency": data.currency,
        "lapse_reason": data.reason or plan.lapse_reason,
        "do_not_contact": plan.do_not_contact or data.do_not_contact,
    }


def handle_lapsed(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Open (or reuse the open) plan, record the lapse, then run the ``customer.lapsed`` rules."""
    data = lapsed_data(event)
    held = let_go(plan, event, rules, now)
    if held is not None:  # letting them go: no new plan, so none of its outreach or prompts
        lost, entry = held
        return finish([], plan, lost, [RuleTrace(METHOD, False, entry.reason)], [entry])
    reused = plan is not None and plan.is_open
    if plan is not None and reused:
        start = record(plan, event, rules, now, METHOD,
                       f"lapse on {data.lapsed_at} reported again while the plan is open",
                       **_details(data, plan))
    else:
        start = open_plan(event, plan, rules, now, f"lapsed on {data.lapsed_at}")
        start = amended(start, _details(data, start))
    return run_rules(event, plan, start, rules, now, {"plan_reused": reused})
