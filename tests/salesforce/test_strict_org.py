"""The test org refuses what Salesforce refuses (see tests/sfserver/README.md), so the tests can fail."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.sfserver import SalesforceServer
from tests.sfserver.cast import ALICE, CASE_QUEUE, LEAD_QUEUE, WON
from tests.sfserver.org import SfError

QUEUE, GONE = "00G000000000QUEAAA", "005000000000GONAAA"


def _task(**fields: Any) -> dict[str, Any]:
    return {"Subject": "Call them", "WhatId": WON, "OwnerId": ALICE, **fields}


@pytest.mark.parametrize(("fields", "code"), [
    ({"OwnerId": "winback-default-owner"}, "MALFORMED_ID"),
    ({"WhatId": "001000000000NOPAAA"}, "INVALID_CROSS_REFERENCE_KEY"),
    ({"OwnerId": QUEUE}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"OwnerId": GONE}, "INACTIVE_OWNER_OR_USER"),
    ({"Subject": "x" * 256}, "STRING_TOO_LONG"),
    ({"Priority": "Urgent"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
    ({"Nope__c": "x"}, "INVALID_FIELD"),
])
def test_a_task_salesforce_would_refuse_is_refused(server: SalesforceServer, fields: dict[str, Any],
                                                   code: str) -> None:
    server.org.seed("Group", Id=QUEUE, Name="Managers", Type="Queue")
    server.org.seed("User", Id=GONE, Username="gone@example.com.test", IsActive=False)
    with pytest.raises(SfError) as caught, server.org.transaction() as tx:
        server.org.create(tx, "Task", _task(**fields))
    assert caught.value.code == code
    assert server.records("Task") == []


def test_a_queue_may_own_a_plan_but_not_an_event(server: SalesforceServer) -> None:
    server.org.seed("Group", Id=QUEUE, Name="Managers", Type="Queue")
    with server.org.transaction() as tx:
        server.org.create(tx, "Winback_Plan__c", {"Name": "Acme #1", "OwnerId": QUEUE})
    with pytest.raises(SfError) as caught, server.org.transaction() as tx:
        server.org.create(tx, "Event", {"StartDateTime": "2026-11-22T10:00:00Z",
                                        "DurationInMinutes": 30, "OwnerId": QUEUE})
    assert caught.value.code == "FIELD_INTEGRITY_EXCEPTION"


@pytest.mark.parametrize(("owner", "code"), [
    (CASE_QUEUE, None), (ALICE, None),  # a queue that takes Cases, or a user
    (LEAD_QUEUE, "FIELD_INTEGRITY_EXCEPTION"),  # its Supported Objects lack Case
    (GONE, "INACTIVE_OWNER_OR_USER"),
    ("00G000000000NOPAAA", "INVALID_CROSS_REFERENCE_KEY"),
])
def test_a_case_is_owned_by_a_user_or_a_queue_that_takes_cases(
        server: SalesforceServer, owner: str, code: str | None) -> None:
    server.org.seed("User", Id=GONE, Username="gone@example.com.test", IsActive=False)
    body = {"Subject": "Escalated", "AccountId": WON, "OwnerId": owner, "Status": "New"}
    if code is None:
        with server.org.transaction() as tx:
            server.org.create(tx, "Case", body)
        assert [(r["OwnerId"], r["IsClosed"]) for r in server.records("Case")] == [(owner, False)]
        return
    with pytest.raises(SfError) as caught, server.org.transaction() as tx:
        server.org.create(tx, "Case", body)
    assert caught.value.code == code


def test_an_events_end_moves_with_its_start(server: SalesforceServer) -> None:
    with server.org.transaction() as tx:
        event = server.org.create(tx, "Event", {"StartDateTime": "2026-11-22T10:00:00Z",
                                                "DurationInMinutes": 45, "OwnerId": ALICE})
    with server.org.transaction() as tx:
        server.org.update(tx, "Event", event, {"StartDateTime": "2026-11-20T08:00:00Z"})
    row = server.org.get("Event", event)
    assert (row["StartDateTime"], row["EndDateTime"]) == (
        "2026-11-20T08:00:00.000+0000", "2026-11-20T08:45:00.000+0000")


def test_the_worker_cannot_write_the_orgs_own_records(server: SalesforceServer) -> None:
    with pytest.raises(SfError) as caught, server.org.transaction() as tx:
        server.org.create(tx, "Account", {"Name": "Sneaky"})
    assert caught.value.code == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_a_suppression_must_name_a_plan_that_exists_and_has_no_owner_of_its_own(
    server: SalesforceServer,
) -> None:
    with server.org.transaction() as tx:
        plan = server.org.create(tx, "Winback_Plan__c", {"Name": "Acme #1", "Plan_Key__c": "A#1"})
    refusals = []
    for body in ({"Winback_Key__c": "A#1:suppressed:1"},  # a detail without its master
                 {"Plan__r": {"Plan_Key__c": "B#1"}},  # a master that is not there
                 {"Plan__r": {"Plan_Key__c": "A#1"}, "OwnerId": ALICE}):  # owned by its master
        with pytest.raises(SfError) as caught, server.org.transaction() as tx:
            server.org.create(tx, "Winback_Suppression__c", body)
        refusals.append(caught.value.code)
    assert refusals == ["REQUIRED_FIELD_MISSING", "INVALID_FIELD", "INVALID_FIELD"]
    with server.org.transaction() as tx:
        server.org.create(tx, "Winback_Suppression__c", {"Plan__r": {"Plan_Key__c": "A#1"}})
    assert [row["Plan__c"] for row in server.records("Winback_Suppression__c")] == [plan]


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/json", 201), ("application/json; charset=UTF-8", 201),
    (None, 415), ("application/x-www-form-urlencoded", 415), ("text/plain", 415),
])
def test_a_body_is_read_only_when_it_says_it_is_json(server: SalesforceServer,
                                                     content_type: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {server.issue_token()}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    reply = requests.post(f"{server.url}/services/data/v{server.api_version}/sobjects/Task",
                          data=b'{"Subject":"Call them","WhatId":"%s"}' % WON.encode(),
                          headers=headers, verify=str(server.ca_file), timeout=10)
    assert reply.status_code == status
    if status == 415:
        assert reply.json()[0]["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
    assert len(server.records("Task")) == (status == 201)
