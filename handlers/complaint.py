"""``crm.complaint.logged``: record the complaint on the open plan (a complaint opens one), then the rules."""

from __future__ import annotations

from datetime import datetime

from handlers.errors import InvalidEventError
from handlers.events import ComplaintData, Event
from handlers.lapsed import open_plan
from handlers.outcome import Outcome, RuleTrace
from handlers.pipeline import METHOD, finish, let_go, record, run_rules
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet


def complaint_data(event: Event) -> ComplaintData:
    if not isinstance(event.data, ComplaintData):
        raise InvalidEventError(f"{event.type} event {event.id} does not carry complaint data")
    return event.data


def _record(plan: Plan, data: ComplaintData, event: Event, rules: RuleSet, now: datetime) -> Plan:
    # do-not-contact is sticky for the life of the plan: once asked, we never contact again.
    return record(
        plan, event, rules, now, METHOD,
        f"complaint {data.complaint_id} ({data.severity}) recorded",
        complaints=(*plan.complaints, data.complaint_id),
        account_name=data.account_name or plan.account_name,
        owner_id=data.owner_id or plan.owner_id,
        contact_id=data.contact_id or plan.contact_id,
        contact_name=data.contact_name or plan.contact_name,
        contact_email=data.contact_email or plan.contact_email,
        do_not_contact=plan.do_not_contact or data.do_not_contact,
    )


def handle_complaint(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Acknowledge within the SLA, escalate by severity, apologise once; open a plan if none is
    (except within the cool-off after a lost plan: see ``handlers.guards.cooling_off``)."""
    data = complaint_data(event)
    if plan is not None and data.complaint_id in plan.complaints:
        # The same complaint under a new event id: everything it needs was written the first time.
        why = f"complaint {data.complaint_id} is already recorded on plan {plan.key}"
        return finish([], plan, plan, [RuleTrace(METHOD, False, why)], [])
    held = let_go(plan, event, rules, now)
    if held is not None:
        # Letting them go: the complaint is still acknowledged (service is owed), on the lost
        # plan; the guards keep the apology and any other outreach from reaching them.
        lost, entry = held
        start = _record(lost, data, event, rules, now)
        return run_rules(event, plan, start, rules, now, {"repeat_complaint": bool(lost.complaints)},
                         suppressed=(entry,))
    repeat = plan is not None and plan.is_open and bool(plan.complaints)
    if plan is not None and plan.is_open:
        start = plan
    else:
        # A complaint is a churn risk: with no open plan, it opens one.
        start = open_plan(event, plan, rules, now, f"complaint {data.complaint_id} logged")
    start = _record(start, data, event, rules, now)
    return run_rules(event, plan, start, rules, now, {"repeat_complaint": repeat})
