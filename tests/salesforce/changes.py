"""Event changes for the Salesforce tests: a lapse's plan and tasks, drafts, check-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.actions import (
    REVISION_MARKER_TYPE,
    AddToCampaign,
    CreateTask,
    DraftEmail,
    EventChange,
    Provenance,
    PublishEvent,
    SavePlan,
    ScheduleCheckIn,
)
from handlers.plan import Plan, plan_key

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
OWNER, CONTACT, CAMPAIGN = "0050000000ALICEAAA", "0030000000DANA1", "701000000SURVEY"


def account_id(n: int) -> str:
    return f"001{n:012d}AAA"


def contact_id(n: int) -> str:
    return f"003{n:012d}AAA"


def prov(event_id: str) -> Provenance:
    return Provenance(event_id=event_id, rule_id="rule-1", rules_version="v1")


def plan(account: str, seq: int = 1, event_id: str = "evt-1") -> Plan:
    return Plan(key=plan_key(account, seq), account_id=account, seq=seq, stage="discovering",
                opened_at=NOW, opened_by=event_id, account_name=f"Customer {account}",
                owner_id=OWNER, discovery="open", revision=1)


def event_entries(ledger: list[dict[str, object]]) -> list[dict[str, object]]:
    """The ledger's event entries, leaving out the plan-revision claims beside them."""
    return [row for row in ledger if row.get("Event_Type__c") != REVISION_MARKER_TYPE]


def task(account: str, event_id: str, name: str = "discovery", subject: str = "Find out why") -> CreateTask:
    return CreateTask(
        key=f"{account}#1:{name}", plan_key=f"{account}#1", account_id=account, kind=name,
        subject=subject, description="Why do you no longer use our products/services?",
        owner_id=OWNER, due_at=NOW + timedelta(days=3), priority="normal",
        provenance=prov(event_id), contact_id=CONTACT,
    )


def draft(account: str, event_id: str) -> DraftEmail:
    return DraftEmail(key=f"{account}#1:apology", plan_key=f"{account}#1", account_id=account,
                      kind="apology", subject="We let you down", body_html="<p>Sorry</p>",
                      body_text="Sorry", owner_id=OWNER, provenance=prov(event_id),
                      to_address="dana@example.com", contact_id=CONTACT)


def checkin(account: str, event_id: str, slot: int = 1) -> ScheduleCheckIn:
    return ScheduleCheckIn(key=f"{account}#1:checkin:{slot}", plan_key=f"{account}#1",
                           account_id=account, slot=slot, start_at=NOW + timedelta(days=7 * slot),
                           duration_minutes=30, subject="Check-in", description="How are we doing?",
                           owner_id=None, provenance=prov(event_id), contact_id=CONTACT)


def lapse(n: int) -> EventChange:
    """What a lapse writes: the new plan, the discovery task, the prompts; a survey for odd ``n``."""
    account, event_id = account_id(n), f"evt-lapsed-{n}"
    actions: list[object] = [task(account, event_id)]
    actions += [task(account, event_id, f"write-it-down.{i}", f"Write down {i}") for i in (1, 2)]
    if n % 2:
        actions.append(AddToCampaign(key=f"{account}#1:survey", plan_key=f"{account}#1",
                                     account_id=account, campaign_id=CAMPAIGN,
                                     contact_id=contact_id(n), provenance=prov(event_id)))
    actions.append(PublishEvent(key=f"{account}#1:opened", routing_key="winback.plan.opened",
                                payload={"account_id": account}, provenance=prov(event_id)))
    actions.append(SavePlan(plan(account, event_id=event_id)))
    return EventChange(event_id, "crm.customer.lapsed", account, tuple(actions))  # type: ignore[arg-type]
