"""Each fault ends right: retried and written once, or a transient/permanent error for its event."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from handlers.actions import AddToCampaign, EventChange, SavePlan
from handlers.errors import (
    CrmAccessError,
    CrmRejectedError,
    CrmUnavailableError,
    PlanConflictError,
    RateLimitedError,
)
from tests.salesforce.changes import CAMPAIGN, account_id, contact_id, lapse, plan, prov, task
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings, salesforce_crm
from tests.sfserver.cast import ALICE
from worker.crm.fitting import MARKER
from worker.crm.salesforce import SalesforceCrm

GRAPH = "composite/graph"
KEYED = {"Task": "Winback_Key__c", "Event": "Winback_Key__c", "EmailMessage": "Winback_Key__c",
         "CampaignMember": "Winback_Key__c", "Winback_Plan__c": "Plan_Key__c",
         "Winback_Ledger__c": "Event_Id__c"}


def _keys(server: SalesforceServer, sobject: str) -> list[str]:
    return [row[KEYED[sobject]] for row in server.records(sobject)]


def assert_written_once(server: SalesforceServer, *changes: EventChange) -> None:
    """Every record key exists exactly once, and each change's ledger entry is there."""
    for sobject in KEYED:
        twice = [key for key, n in Counter(_keys(server, sobject)).items() if n > 1]
        assert twice == [], f"duplicate {sobject} records: {twice}"
    assert set(_keys(server, "Winback_Ledger__c")) >= {c.event_id for c in changes}


def assert_nothing_written_for(server: SalesforceServer, change: EventChange) -> None:
    rows = [row for sobject in KEYED for row in server.records(sobject)]
    keys = set(KEYED.values())
    assert [r for r in rows if any(change.account_id in str(r.get(k) or "") for k in keys)
            or r.get("Event_Id__c") == change.event_id] == []


def _graph_calls(server: SalesforceServer) -> int:
    return sum(1 for c in server.calls if c.path.endswith(GRAPH))


def test_unable_to_lock_row_is_retried_and_written_once(server: SalesforceServer,
                                                         crm: SalesforceCrm) -> None:
    server.faults.lock_row("Task", times=1)
    changes = [lapse(1), lapse(2)]
    assert crm.apply(changes) == [None, None]
    assert_written_once(server, *changes)
    assert len(server.records("Task")) == 6
    assert _graph_calls(server) == 2, "the second call carries only the graph that hit the lock"


def test_a_row_lock_that_persists_is_a_transient_error_for_its_event_only(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    locked, fine = lapse(1), lapse(2)
    server.faults.lock_row("Task", times=None, when=lambda row: row["WhatId"] == locked.account_id)
    results = crm.apply([locked, fine])
    assert isinstance(results[0], CrmUnavailableError)
    assert "UNABLE_TO_LOCK_ROW" in str(results[0])
    assert results[1] is None
    assert _graph_calls(server) == FAST_RETRY.attempts
    assert_nothing_written_for(server, locked)
    assert_written_once(server, fine)


@pytest.mark.parametrize(("inject", "code"), [
    (lambda s: s.faults.limit_exceeded(path=GRAPH, times=2), 403),
    (lambda s: s.faults.unavailable(path=GRAPH, times=2), 503),
    (lambda s: s.faults.respond(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.",
                                path=GRAPH, times=2), 500),
])
def test_a_refused_call_is_retried_and_written_once(server: SalesforceServer, crm: SalesforceCrm,
                                                   inject: object, code: int) -> None:
    inject(server)  # type: ignore[operator]
    changes = [lapse(1), lapse(2)]
    assert crm.apply(changes) == [None, None]
    assert [c.status for c in server.calls].count(code) == 2
    assert_written_once(server, *changes)


def test_a_request_limit_that_persists_hands_a_rate_limited_error_to_the_broker(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    server.faults.limit_exceeded(path=GRAPH, times=None)
    results = crm.apply([lapse(1), lapse(2)])
    assert all(isinstance(r, RateLimitedError) for r in results), results
    assert "REQUEST_LIMIT_EXCEEDED" in str(results[0])
    assert _graph_calls(server) == FAST_RETRY.attempts, "bounded: no retry beyond the policy"
    assert server.records("Winback_Ledger__c") == []


def test_a_persistent_503_hands_a_transient_error_to_the_broker(server: SalesforceServer,
                                                                crm: SalesforceCrm) -> None:
    server.faults.unavailable(times=None)
    with pytest.raises(CrmUnavailableError, match="SERVER_UNAVAILABLE"):
        crm.load(["001A"], ["evt-1"])
    results = crm.apply([lapse(1)])
    assert isinstance(results[0], CrmUnavailableError)


@pytest.mark.parametrize("after_commit", [True, False])
def test_a_timeout_is_retried_and_the_event_written_once(tmp_path: Path, after_commit: bool) -> None:
    with SalesforceServer(tmp_path) as server:
        crm = SalesforceCrm.from_settings(jwt_settings(server, salesforce_timeout=0.5),
                                          retry=FAST_RETRY)
        try:
            server.faults.timeout(path=GRAPH, times=1, after=after_commit)
            changes = [lapse(1), lapse(2)]
            assert crm.apply(changes) == [None, None]
        finally:
            crm.close()
        assert _graph_calls(server) == 2
        assert_written_once(server, *changes)
        assert len(server.records("Winback_Plan__c")) == 2


def test_a_dropped_connection_is_retried_and_written_once(server: SalesforceServer,
                                                           crm: SalesforceCrm) -> None:
    server.faults.disconnect(path=GRAPH, times=1)
    changes = [lapse(1), lapse(2)]
    assert crm.apply(changes) == [None, None]
    assert_written_once(server, *changes)


def test_latency_on_every_call_changes_nothing_but_time(server: SalesforceServer,
                                                        crm: SalesforceCrm) -> None:
    server.faults.latency(0.02)
    changes = [lapse(n) for n in range(5)]
    assert crm.apply(changes) == [None] * 5
    assert_written_once(server, *changes)


def test_a_validation_rule_rejects_only_its_own_event_with_salesforces_message(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    bad, good = lapse(1), lapse(2)
    server.faults.record_error(
        "Task", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Due date must be a business day",
        when=lambda row: row["WhatId"] == bad.account_id, times=None)
    results = crm.apply([bad, good])
    assert isinstance(results[0], CrmRejectedError)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: Due date must be a business day" in str(results[0])
    assert results[1] is None
    assert _graph_calls(server) == 1, "a permanent error is not retried"
    assert_nothing_written_for(server, bad)  # atomic: not even its plan or ledger entry
    assert_written_once(server, good)


@pytest.mark.parametrize("code", [
    "INVALID_FIELD", "MALFORMED_ID", "REQUIRED_FIELD_MISSING", "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "INVALID_CROSS_REFERENCE_KEY", "STRING_TOO_LONG", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
])
def test_a_permanent_error_code_in_a_record_is_a_crm_rejected_error(
    server: SalesforceServer, crm: SalesforceCrm, code: str
) -> None:
    server.faults.record_error("Winback_Plan__c", code, f"{code} says Salesforce", times=None)
    (result,) = crm.apply([lapse(1)])
    assert isinstance(result, CrmRejectedError)
    assert f"{code}: {code} says Salesforce" in str(result)
    assert _graph_calls(server) == 1


def test_a_subject_longer_than_the_field_is_fitted_with_the_marker_not_refused(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    crm.check()  # the lengths come from describe
    too_long = task(account_id(1), "evt-9", subject="x" * 256)
    (result,) = crm.apply([EventChange("evt-9", "crm.complaint.logged", account_id(1), (too_long,))])
    assert result is None
    (row,) = server.records("Task")
    assert row["Subject"] == "x" * (255 - len(MARKER)) + MARKER


def test_salesforce_own_validation_of_a_too_long_value_is_a_crm_rejected_error(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    # A field the adapter does not fit (the key) still meets the org's own check.
    too_long = replace(task(account_id(1), "evt-9"), key="k" * 300)
    (result,) = crm.apply([EventChange("evt-9", "crm.complaint.logged", account_id(1), (too_long,))])
    assert isinstance(result, CrmRejectedError)
    assert "STRING_TOO_LONG" in str(result)


def test_an_owner_the_org_does_not_have_hands_the_work_to_the_accounts_owner(
        tmp_path: Path) -> None:
    # Salesforce would refuse "USR-1" (MALFORMED_ID) and the whole event with it: the work goes
    # to the account's owner instead (the integration user when nobody owns it).
    with salesforce_crm(tmp_path, strict_ids=True) as (server, crm):
        bad = replace(task(account_id(1), "evt-1"), owner_id="USR-1")
        (result,) = crm.apply([EventChange("evt-1", "crm.customer.lapsed", bad.account_id,
                                           (bad,))])
        (row,) = server.records("Task")
    assert result is None
    assert row["OwnerId"] == ALICE  # who owns the test org's numbered accounts


def test_a_malformed_account_id_parks_only_its_own_event(tmp_path: Path) -> None:
    bad_account = "ACME-42"
    bad = EventChange("evt-bad", "crm.customer.lapsed", bad_account, (
        task(bad_account, "evt-bad"), SavePlan(plan(bad_account, event_id="evt-bad"))))
    good = lapse(1)
    with salesforce_crm(tmp_path, strict_ids=True) as (server, crm):
        snapshot = crm.load([bad_account, good.account_id], ["evt-bad", good.event_id])
        assert snapshot.plans == {}
        results = crm.apply([bad, good])
        assert isinstance(results[0], CrmRejectedError)
        assert "MALFORMED_ID" in str(results[0])
        assert results[1] is None
        assert_written_once(server, good)


def test_a_campaign_member_without_a_contact_is_rejected_by_salesforce(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    account = account_id(1)
    member = AddToCampaign(key=f"{account}#1:survey", plan_key=f"{account}#1", account_id=account,
                           campaign_id=CAMPAIGN, contact_id=None, provenance=prov("evt-1"))
    (result,) = crm.apply([EventChange("evt-1", "crm.customer.lapsed", account, (member,))])
    assert isinstance(result, CrmRejectedError)
    assert "REQUIRED_FIELD_MISSING" in str(result)


def test_beyond_fourteen_failed_graphs_the_halted_rest_are_sent_again(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    bad = [lapse(n) for n in range(20)]
    good = [lapse(n) for n in range(20, 30)]
    rejected = {c.account_id for c in bad}
    server.faults.record_error("Task", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no",
                               when=lambda row: row["WhatId"] in rejected, times=None)
    results = crm.apply(bad + good)
    assert all(isinstance(r, CrmRejectedError) for r in results[:20])
    assert results[20:] == [None] * 10
    assert _graph_calls(server) == 2
    assert_written_once(server, *good)


def test_a_contact_already_in_the_survey_campaign_is_not_added_again(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    first = lapse(1)  # odd: the survey route
    again = EventChange("evt-next-year", "crm.customer.lapsed", first.account_id, (AddToCampaign(
        key=f"{first.account_id}#2:survey", plan_key=f"{first.account_id}#2",
        account_id=first.account_id, campaign_id=CAMPAIGN, contact_id=contact_id(1),
        provenance=prov("evt-next-year")),))
    assert crm.apply([first]) == [None]
    assert crm.apply([again]) == [None], "Salesforce would refuse a second membership"
    assert len(server.records("CampaignMember")) == 1


@pytest.mark.parametrize("code", ["INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS",
                                  "API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"])
def test_a_permission_the_integration_user_lost_is_an_access_error_sent_once(
    server: SalesforceServer, crm: SalesforceCrm, code: str
) -> None:
    server.faults.record_error("Winback_Plan__c", code, f"{code} says Salesforce", times=None)
    (result,) = crm.apply([lapse(1)])
    assert isinstance(result, CrmAccessError), "the worker pauses for it instead of parking"
    assert "grant the Winback_Integration permission set" in str(result)
    assert _graph_calls(server) == 1


def test_a_plan_conflict_is_not_sent_again_in_process(server: SalesforceServer,
                                                      crm: SalesforceCrm) -> None:
    first = lapse(1)
    assert crm.apply([first]) == [None]
    stale = replace(lapse(1), event_id="evt-stale")  # saves the plan at the revision first took
    calls_before = _graph_calls(server)
    (result,) = crm.apply([stale])
    assert isinstance(result, PlanConflictError)
    assert _graph_calls(server) == calls_before + 1, "a taken revision can never succeed on a resend"
