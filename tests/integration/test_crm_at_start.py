"""A CRM that is down when the worker starts is waited for, not crash-looped on.

Kubernetes restarts a pod that exits, with a growing back-off: a Salesforce maintenance window at
deploy time would leave every replica in CrashLoopBackOff long after Salesforce came back. The
worker instead stays up and not ready, asks again with back-off, and starts consuming as soon as
the org answers. A CRM that *refuses* it (credentials, metadata) still stops start-up at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from handlers.errors import ConfigError
from tests.integration.broker import Names
from tests.integration.harness import make_settings
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings
from tests.waiting import wait_until
from worker.app import App, build_app
from worker.crm.salesforce import SalesforceCrm

SALESFORCE_SETTINGS = ("crm", "salesforce_login_url", "salesforce_client_id", "salesforce_username",
                       "salesforce_private_key_file", "salesforce_ca_bundle", "salesforce_api_version",
                       "salesforce_timeout")


def _app(names: Names, tmp_path: Path, server: SalesforceServer, **overrides: Any) -> App:
    org = jwt_settings(server, **overrides)
    settings = make_settings(names, tmp_path, **{k: getattr(org, k) for k in SALESFORCE_SETTINGS})
    return build_app(settings, crm=SalesforceCrm.from_settings(settings, retry=FAST_RETRY))


@contextmanager
def _running(app: App) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            app.run()
        except BaseException as exc:  # handed to the test, which asserts on it
            errors.append(exc)

    thread = threading.Thread(target=run, name="test-app")
    thread.start()
    try:
        yield errors
    finally:
        app.consumer.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop within 30 s"


def _failed_checks(app: App) -> float:
    value = app.metrics.registry.get_sample_value("winback_crm_start_checks_failed_total")
    return value or 0.0


def test_an_org_down_at_start_up_is_waited_for_then_consumed_from(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server:
        # Two whole start-up checks fail (each tries FAST_RETRY.attempts times); the third passes.
        server.faults.unavailable(times=2 * FAST_RETRY.attempts)
        app = _app(names, tmp_path, server)
        with _running(app) as errors:
            wait_until(lambda: _failed_checks(app) >= 1, what="a failed start-up check")
            assert not app.consumer.is_consuming(), "not ready while the CRM is unreachable"
            wait_until(app.consumer.is_consuming, timeout=30, what="consuming once the org answers")
        assert errors == []
        assert _failed_checks(app) == 2


def test_a_stop_while_waiting_for_the_crm_ends_the_worker_cleanly(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server:
        server.faults.unavailable(times=None)
        app = _app(names, tmp_path, server)
        with _running(app) as errors:
            wait_until(lambda: _failed_checks(app) >= 1, what="a failed start-up check")
        assert errors == []
        assert app.consumer.connections_opened == 0, "never consumed without a CRM"


def test_an_org_that_refuses_the_worker_stops_start_up_with_the_reason(
    names: Names, tmp_path: Path
) -> None:
    with SalesforceServer(tmp_path) as server:
        app = _app(names, tmp_path, server, salesforce_username="nobody@example.invalid")
        with _running(app) as errors:
            wait_until(lambda: errors, what="start-up to fail")
        (error,) = errors
        assert isinstance(error, ConfigError)
        assert "Salesforce login refused for nobody@example.invalid" in str(error)
        assert _failed_checks(app) == 0
