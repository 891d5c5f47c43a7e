"""Suppressions as records of their plan (Winback_Suppression__c), for reports by reason and rule:
written once each, in the graph that saves the plan, however often the event comes."""

from __future__ import annotations

from datetime import timedelta

from handlers.actions import EventChange, SavePlan
from handlers.plan import Plan, Suppression
from tests.salesforce.changes import NOW, account_id, plan
from tests.sfserver import SalesforceServer
from worker.crm.salesforce import SalesforceCrm

ACCOUNT = account_id(1)


def _suppressed(p: Plan, event_id: str, code: str, reason: str) -> Plan:
    entry = Suppression(at=NOW + timedelta(hours=len(p.suppressed)), event_id=event_id,
                        rule_id="apologise-once", action="apology", key=f"{p.key}:apology",
                        reason=reason, code=code)
    return p.model_copy(update={"suppressed": (*p.suppressed, entry), "revision": p.revision + 1})


def _save(event_id: str, p: Plan, known: int) -> EventChange:
    return EventChange(event_id, "crm.complaint.logged", ACCOUNT, (SavePlan(p, suppressed_from=known),))


def _rows(server: SalesforceServer) -> list[tuple[object, ...]]:
    return sorted((r["Winback_Key__c"], r["Event_Id__c"], r["Reason_Code__c"], r["Reason__c"])
                  for r in server.records("Winback_Suppression__c"))


def test_each_suppression_becomes_one_record_of_its_plan_once(server: SalesforceServer,
                                                             crm: SalesforceCrm) -> None:
    opened = plan(ACCOUNT)
    first = _suppressed(opened, "evt-2", "once_per_plan",
                        f"already apologised once on this plan ({opened.key}:apology)")
    assert crm.apply([EventChange("evt-1", "crm.customer.lapsed", ACCOUNT, (SavePlan(opened),)),
                      _save("evt-2", first, known=0)]) == [None, None]
    assert crm.apply([_save("evt-2", first, known=0)]) == [None]  # the same event, redelivered
    second = _suppressed(first, "evt-3", "budget", "contact budget reached: 3 outreach actions")
    assert crm.apply([_save("evt-3", second, known=1)]) == [None]
    (plan_row,) = server.records("Winback_Plan__c")
    assert {r["Plan__c"] for r in server.records("Winback_Suppression__c")} == {plan_row["Id"]}
    assert _rows(server) == [
        (f"{opened.key}:suppressed:1", "evt-2", "once_per_plan", "already apologised once on this plan"),
        (f"{opened.key}:suppressed:2", "evt-3", "budget", "contact budget reached: 3 outreach actions"),
    ]


def test_a_suppression_already_in_the_org_is_not_written_again(server: SalesforceServer,
                                                               crm: SalesforceCrm) -> None:
    # A save that does not know which suppressions are new (suppressed_from 0) looks them up.
    first = _suppressed(plan(ACCOUNT), "evt-2", "once_per_plan", "already apologised")
    assert crm.apply([_save("evt-2", first, known=0)]) == [None]
    again = first.model_copy(update={"revision": first.revision + 1})
    assert crm.apply([_save("evt-3", again, known=0)]) == [None]
    assert len(_rows(server)) == 1
