"""The JSON the client sends and reads: what the standard library would send and read, refusing
what it refuses, whichever encoder does the work."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from handlers.actions import EventChange
from handlers.errors import CrmUnavailableError
from tests.salesforce.changes import account_id, task
from tests.sfserver import SalesforceServer
from worker.crm import salesforce_records as sf
from worker.crm.salesforce import SalesforceCrm

# Text beyond ASCII: accents, an arrow, an emoji (outside the BMP), a line separator, a control.
TEXT = "Réunion → 😀 de l'équipe\u2028fin\x01"


def _ledger_write(event_type: Any) -> dict[str, Any]:
    body = {sf.LEDGER_KEY: "evt-json", "Event_Type__c": event_type, "Account_Id__c": account_id(1)}
    return {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"/services/data/v62.0/sobjects/{sf.LEDGER}", "referenceId": "n0",
         "body": body},
    ]}


def _ledger_read(crm: SalesforceCrm) -> Any:
    soql = f"SELECT Event_Type__c FROM {sf.LEDGER} WHERE Event_Id__c = 'evt-json'"
    return crm.client.rest("GET", f"query?q={soql}")["records"][0]["Event_Type__c"]


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_a_body_holding_nan_or_infinity_is_refused_and_never_sent(
    server: SalesforceServer, crm: SalesforceCrm, number: float
) -> None:
    crm.check()  # logged in: any API call after this one is the write's
    before = server.api_calls
    body = _ledger_write("lapsed") | {"deep": [{"values": [1, 2.5, number]}]}
    with pytest.raises(CrmUnavailableError, match="not JSON compliant"):
        crm.client.rest("POST", "composite", body)
    assert server.api_calls == before


def test_text_beyond_ascii_is_written_and_read_back_exactly(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    crm.client.rest("POST", "composite", _ledger_write(TEXT))
    assert server.records(sf.LEDGER)[0]["Event_Type__c"] == TEXT
    assert _ledger_read(crm) == TEXT


def test_a_lone_surrogate_is_sent_escaped_and_read_back_as_it_was(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    # Not valid UTF-8, so no UTF-8 encoder writes it: the standard library's escape is sent, and
    # the reply's escape is read as the standard library reads it.
    crm.client.rest("POST", "composite", _ledger_write("half \ud83d of an emoji"))
    assert _ledger_read(crm) == "half \ud83d of an emoji"


def test_a_task_beyond_ascii_is_written_and_read_back_through_the_adapter(
    crm: SalesforceCrm,
) -> None:
    account = account_id(2)
    written = replace(task(account, "evt-t"), subject=TEXT[:40], description=TEXT * 3)
    assert crm.apply([EventChange("evt-t", "test.event", account, (written,))]) == [None]
    (record,) = crm.records(account)
    assert (record.fields["subject"], record.fields["description"]) == (TEXT[:40], TEXT * 3)
