"""Start-up: describe every object the worker writes and stop with a message naming each gap."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import pytest

from handlers.errors import ConfigError, TransientError
from handlers.plan import Plan
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings, token_settings
from tests.sfserver.schema import METADATA
from worker.crm.salesforce import SalesforceCrm


@contextmanager
def _org(tmp_path: Path, **options: Any) -> Iterator[tuple[SalesforceServer, SalesforceCrm]]:
    with SalesforceServer(tmp_path, **options) as server:
        crm = SalesforceCrm.from_settings(jwt_settings(server), retry=FAST_RETRY)
        try:
            yield server, crm
        finally:
            crm.close()


def _problem(tmp_path: Path, **options: Any) -> str:
    with _org(tmp_path, **options) as (_, crm), pytest.raises(ConfigError) as caught:
        crm.check()
    return str(caught.value)


def test_the_shipped_metadata_and_permission_set_pass_the_start_up_check(tmp_path: Path) -> None:
    with _org(tmp_path) as (server, crm):
        crm.check()
        assert server.api_calls == 1, "one composite call describes every object"


def test_a_field_hidden_by_field_level_security_is_named(tmp_path: Path) -> None:
    message = _problem(tmp_path, hidden=frozenset({"Task.Winback_Key__c"}))
    assert "field Task.Winback_Key__c is missing or hidden by field-level security" in message
    assert "Event.Winback_Key__c" not in message
    assert "Winback_Integration permission set" in message


def test_every_missing_object_and_field_is_named_in_one_message(tmp_path: Path) -> None:
    message = _problem(tmp_path, missing=frozenset({"Winback_Ledger__c",
                                                    "Winback_Plan__c.State_Json__c"}))
    assert "object Winback_Ledger__c is missing" in message
    assert "field Winback_Plan__c.State_Json__c is missing" in message
    assert "sf project deploy start" in message


def test_a_missing_object_permission_is_named(tmp_path: Path) -> None:
    message = _problem(tmp_path, read_only=frozenset({"Event"}))
    assert "no permission to create Event" in message
    assert "no permission to edit Event" in message


def test_a_key_field_that_is_not_unique_is_refused(tmp_path: Path) -> None:
    metadata = tmp_path / "metadata"
    shutil.copytree(METADATA, metadata)
    key = metadata / "objects" / "Winback_Ledger__c" / "fields" / "Event_Id__c.field-meta.xml"
    key.write_text(key.read_text().replace("<unique>true</unique>", "<unique>false</unique>"))
    message = _problem(tmp_path, metadata=metadata)
    assert "Winback_Ledger__c.Event_Id__c must be a unique External ID" in message


def test_an_unreachable_org_is_a_transient_error_the_worker_waits_out(tmp_path: Path) -> None:
    with _org(tmp_path) as (server, crm):
        server.faults.unavailable(times=None)
        with pytest.raises(TransientError, match="SERVER_UNAVAILABLE"):
            crm.check()
        assert len(server.calls) == FAST_RETRY.attempts


def test_a_fixed_token_the_org_refuses_stops_start_up(tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server:
        crm = SalesforceCrm.from_settings(token_settings(server), retry=FAST_RETRY)
        server.expire_sessions()
        with pytest.raises(ConfigError, match="cannot be renewed"):
            crm.check()
        crm.close()


def test_an_api_version_without_composite_graphs_is_refused(tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server, pytest.raises(ConfigError, match=r"v50\.0 or later"):
        SalesforceCrm.from_settings(jwt_settings(server, salesforce_api_version="49.0"))


@pytest.mark.parametrize(("field", "literal"), [
    ("Stage__c", Plan.model_fields["stage"].annotation),
    ("Outcome__c", Plan.model_fields["outcome"].annotation),
    ("Approach__c", Plan.model_fields["approach"].annotation),
])
def test_the_plan_picklists_hold_exactly_the_values_the_plan_model_allows(
    field: str, literal: object
) -> None:
    path = METADATA / "objects" / "Winback_Plan__c" / "fields" / f"{field}.field-meta.xml"
    values = set(re.findall(r"<fullName>([^<]+)</fullName>\s*<default>", path.read_text()))
    allowed = {a for arg in get_args(literal) for a in (get_args(arg) or (arg,))} - {type(None)}
    assert values == allowed
