"""Logging in: JWT bearer flow and token mode, session expiry, the private CA, no secrets in logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from structlog.testing import capture_logs

from handlers.errors import ConfigError, CrmAccessError
from tests.salesforce.changes import event_entries, lapse
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings, token_settings
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_auth import jwt_audience
from worker.crm.salesforce_errors import SessionExpiredError

TOKEN_PATH = "/services/oauth2/token"


def _logins(server: SalesforceServer) -> int:
    return sum(1 for c in server.calls if c.path == TOKEN_PATH)


def test_jwt_login_takes_the_token_and_instance_url_from_the_token_response(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    crm.check()
    assert [c.path for c in server.calls][:1] == [TOKEN_PATH]
    assert server.calls[1].path.startswith(f"/services/data/v{server.api_version}/")


def test_token_mode_uses_the_given_token_without_logging_in(server: SalesforceServer) -> None:
    crm = SalesforceCrm.from_settings(token_settings(server), retry=FAST_RETRY)
    try:
        crm.check()
        assert crm.apply([lapse(1)]) == [None]
    finally:
        crm.close()
    assert _logins(server) == 0
    assert len(server.records("Winback_Plan__c")) == 1


def test_an_expired_session_in_jwt_mode_logs_in_again_once_and_writes_once(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    crm.check()
    server.expire_sessions()
    assert crm.apply([lapse(1)]) == [None]
    assert _logins(server) == 2
    assert [c.status for c in server.calls].count(401) == 1
    assert len(event_entries(server.records("Winback_Ledger__c"))) == 1


def test_an_expired_token_in_token_mode_is_a_clear_access_error(server: SalesforceServer) -> None:
    crm = SalesforceCrm.from_settings(token_settings(server), retry=FAST_RETRY)
    try:
        server.expire_sessions()
        with pytest.raises(SessionExpiredError, match="WINBACK_SALESFORCE_ACCESS_TOKEN"):
            crm.load(["001A"], ["evt-1"])
        (result,) = crm.apply([lapse(1)])
    finally:
        crm.close()
    assert isinstance(result, CrmAccessError), "the worker pauses for it; no retry can fix it"
    assert "cannot be renewed" in str(result)
    assert [c.status for c in server.calls].count(401) == 2, "no blind retries of a dead token"
    assert server.records("Winback_Plan__c") == []


def test_a_login_the_org_refuses_stops_start_up_with_salesforces_reason(
    server: SalesforceServer,
) -> None:
    settings = jwt_settings(server, salesforce_username="someone.else@example.com")
    crm = SalesforceCrm.from_settings(settings, retry=FAST_RETRY)
    try:
        with pytest.raises(ConfigError, match="user hasn't approved this consumer"):
            crm.check()
    finally:
        crm.close()
    assert _logins(server) == 1, "a refused login is not retried"


def test_a_missing_private_key_file_is_a_config_error(server: SalesforceServer,
                                                     tmp_path: Path) -> None:
    settings = jwt_settings(server, salesforce_private_key_file=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="WINBACK_SALESFORCE_PRIVATE_KEY_FILE"):
        SalesforceCrm.from_settings(settings)


def _other_ca(directory: Path) -> str:
    """A CA bundle that does not hold the test org's CA."""
    path = directory / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_the_private_ca_bundle_wins_over_requests_ca_bundle_from_the_environment(
    server: SalesforceServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _other_ca(tmp_path))
    crm = SalesforceCrm.from_settings(jwt_settings(server), retry=FAST_RETRY)
    try:
        crm.check()
    finally:
        crm.close()


def test_without_the_private_ca_the_certificate_is_refused(
    server: SalesforceServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _other_ca(tmp_path))
    crm = SalesforceCrm.from_settings(jwt_settings(server, salesforce_ca_bundle=None),
                                      retry=FAST_RETRY)
    try:
        with pytest.raises(ConfigError, match="CERTIFICATE_VERIFY_FAILED"):
            crm.check()
    finally:
        crm.close()


def test_a_missing_ca_bundle_file_is_a_config_error(server: SalesforceServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WINBACK_SALESFORCE_CA_BUNDLE"):
        SalesforceCrm.from_settings(jwt_settings(server, salesforce_ca_bundle=tmp_path / "x.pem"))


def test_no_access_token_or_key_reaches_the_logs(server: SalesforceServer,
                                                 crm: SalesforceCrm) -> None:
    with capture_logs() as logs:
        crm.check()
        server.expire_sessions()
        crm.apply([lapse(1)])
    text = repr(logs)
    assert any(entry["event"] == "salesforce_session_expired" for entry in logs)
    assert server.tokens
    assert not any(token in text for token in server.tokens)
    assert "PRIVATE KEY" not in text


@pytest.mark.parametrize(("login_url", "audience"), [
    ("https://login.salesforce.com", "https://login.salesforce.com"),
    ("https://test.salesforce.com/", "https://test.salesforce.com"),
    ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
    ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
])
def test_the_jwt_audience_follows_the_login_url(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience
