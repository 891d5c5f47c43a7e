"""Paused__c is the owner's: a plan reads back paused exactly when the box is ticked, whatever
the worker's own state says."""

from __future__ import annotations

import pytest

from handlers.actions import EventChange, SavePlan
from tests.salesforce.changes import account_id, plan
from tests.sfserver import SalesforceServer
from worker.crm import salesforce_records as sf
from worker.crm.salesforce import SalesforceCrm


@pytest.mark.parametrize(("state", "ticked"), [(False, False), (False, True), (True, False),
                                               (True, True)])
def test_a_plan_is_paused_exactly_when_its_owner_ticked_paused(
    server: SalesforceServer, crm: SalesforceCrm, state: bool, ticked: bool
) -> None:
    account = account_id(7)
    saved = plan(account).model_copy(update={"paused": state})
    assert crm.apply([EventChange("evt-p", "test.event", account, (SavePlan(saved),))]) == [None]
    (row,) = server.records(sf.PLAN)
    server.org.edit(sf.PLAN, row["Id"], {"Paused__c": ticked})  # the owner's edit
    loaded = crm.load([account], []).plans[account]
    assert loaded.paused is ticked
    assert loaded == saved.model_copy(update={"paused": ticked})
