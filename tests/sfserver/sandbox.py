"""The Salesforce adapter pointed at a test server: settings for both login modes, fast retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.sfserver.server import SalesforceServer
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_retry import RetryPolicy
from worker.settings import Settings


def _no_wait(seconds: float) -> None:
    pass


# Same attempts as production, no waiting: tests count attempts, never time them.
FAST_RETRY = RetryPolicy(attempts=4, initial=0.0, maximum=0.0, sleep=_no_wait)


def jwt_settings(server: SalesforceServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "crm": "salesforce", "salesforce_login_url": server.url,
        "salesforce_client_id": server.app.client_id, "salesforce_username": server.app.username,
        "salesforce_private_key_file": server.app.key_file, "salesforce_ca_bundle": server.ca_file,
        "salesforce_api_version": server.api_version, "salesforce_timeout": 5.0,
    }
    return Settings(**(values | overrides))


def token_settings(server: SalesforceServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "crm": "salesforce", "salesforce_instance_url": server.url,
        "salesforce_access_token": server.issue_token(), "salesforce_ca_bundle": server.ca_file,
        "salesforce_api_version": server.api_version, "salesforce_timeout": 5.0,
    }
    return Settings(**(values | overrides))


@contextmanager
def salesforce_crm(directory: Path, retry: RetryPolicy = FAST_RETRY,
                   **server_options: Any) -> Iterator[tuple[SalesforceServer, SalesforceCrm]]:
    """A running test org and the adapter logged in to it by JWT; both closed afterwards."""
    with SalesforceServer(directory, **server_options) as server:
        crm = SalesforceCrm.from_settings(jwt_settings(server), retry=retry, sleep=_no_wait)
        try:
            yield server, crm
        finally:
            crm.close()
