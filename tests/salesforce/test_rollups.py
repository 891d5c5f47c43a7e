"""The acknowledgement roll-up against the test org: what it writes, and what it costs in calls."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.actions import CreateTask, EventChange, SavePlan
from tests.salesforce.changes import NOW, OWNER, account_id, plan, prov
from tests.sfserver import SalesforceServer
from worker.crm.salesforce import SalesforceCrm
from worker.report.rollups import sync_acknowledgements
from worker.report.source import read_all

PLANS = 300


def _complaint(n: int) -> EventChange:
    account = account_id(n)
    ack = CreateTask(key=f"{account}#1:ack", plan_key=f"{account}#1", account_id=account,
                     kind="acknowledgement", subject="Acknowledge the complaint", description="",
                     owner_id=OWNER, due_at=NOW + timedelta(minutes=20), priority="high",
                     provenance=prov(f"evt-{n}"))
    return EventChange(f"evt-{n}", "crm.complaint.logged", account, (ack, SavePlan(plan(account))))


def test_a_roll_up_writes_only_the_plans_that_changed_25_per_call(
    server: SalesforceServer, crm: SalesforceCrm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crm.apply([_complaint(n) for n in range(PLANS)]) == [None] * PLANS
    for n in range(0, PLANS, 3):  # a third acknowledged in time
        server.org.complete_task(f"{account_id(n)}#1:ack", NOW + timedelta(minutes=5))
    before = server.api_calls
    plans, tasks = read_all(crm)
    first = sync_acknowledgements(crm, plans, tasks, NOW + timedelta(minutes=10))
    calls = server.api_calls - before
    assert len(first) == PLANS  # every plan: 100 in the SLA, 200 pending
    before = server.api_calls
    again = sync_acknowledgements(crm, *read_all(crm), NOW + timedelta(minutes=10))
    quiet = server.api_calls - before
    before = server.api_calls
    overdue = sync_acknowledgements(crm, *read_all(crm), NOW + timedelta(minutes=30))
    late_calls = server.api_calls - before
    with capsys.disabled():
        print(f"\nacknowledgement roll-up of {PLANS} plans: {calls} API calls when all changed, "
              f"{quiet} when none did, {late_calls} when {len(overdue)} turned late")
    assert again == {}
    assert len(overdue) == 200  # the clock alone made the pending ones late
    rows = {r["Plan_Key__c"]: r for r in server.records("Winback_Plan__c")}
    done, waiting = rows[f"{account_id(0)}#1"], rows[f"{account_id(1)}#1"]
    assert (done["Acks_In_SLA__c"], done["Acks_Late__c"], done["Acknowledged_At__c"]) == (
        1, 0, "2026-11-22T10:05:00.000+0000")
    assert (waiting["Acks_Pending__c"], waiting["Acks_Late__c"]) == (0, 1)
    # The reads (plans and tasks; the stored fields), one call looking up the changed plans' ids
    # (up to 200 per query, 25 queries per call), then 25 plans per composite call.
    reads = quiet
    assert calls == reads + 1 + PLANS // 25
    assert late_calls == reads + 1 + 200 // 25
