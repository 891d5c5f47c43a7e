"""The org's daily API allowance: tracked from Sforce-Limit-Info; below the floor, calls slow down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.salesforce.changes import lapse
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings
from worker.app import meter_api_calls
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_limits import ApiAllowance
from worker.metrics import Metrics


def test_the_limit_header_is_tracked(tmp_path: Path) -> None:
    with SalesforceServer(tmp_path, api_used=100, api_total=15_000) as server:
        crm = SalesforceCrm.from_settings(jwt_settings(server), retry=FAST_RETRY)
        try:
            crm.check()
            crm.apply([lapse(1)])
            assert crm.client.allowance.remaining == 15_000 - server.api_used
        finally:
            crm.close()


def test_the_remaining_allowance_and_the_floor_are_exported_for_the_low_allowance_alert(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    with SalesforceServer(tmp_path, api_used=100, api_total=15_000) as server:
        crm = SalesforceCrm.from_settings(jwt_settings(server, salesforce_api_floor=4_000),
                                          retry=FAST_RETRY)
        try:
            meter_api_calls(crm, metrics)
            assert metrics.registry.get_sample_value("winback_crm_api_remaining") == -1, "not known yet"
            crm.check()
            remaining = metrics.registry.get_sample_value("winback_crm_api_remaining")
            assert remaining == 15_000 - server.api_used
        finally:
            crm.close()
    assert metrics.registry.get_sample_value("winback_crm_api_floor") == 4_000


def test_below_the_floor_every_call_waits_and_waits_longer_as_the_allowance_shrinks(
    tmp_path: Path,
) -> None:
    pauses: list[float] = []
    with SalesforceServer(tmp_path, api_used=14_000, api_total=15_000) as server:
        settings = jwt_settings(server, salesforce_api_floor=5_000)
        crm = SalesforceCrm.from_settings(settings, retry=FAST_RETRY, sleep=pauses.append)
        try:
            crm.check()
            assert pauses == [], "nothing is known before the first answer"
            for n in range(3):
                assert crm.apply([lapse(n)]) == [None]
        finally:
            crm.close()
    assert len(pauses) == 6, "each apply: one lookup call, one write call"
    assert pauses == sorted(pauses)
    assert pauses[0] > 0
    assert pauses[-1] == pytest.approx(5.0 * (5_000 - (15_000 - 14_006)) / 5_000)


def test_above_the_floor_the_worker_never_waits(server: SalesforceServer, crm: SalesforceCrm,
                                                sleeps: list[float]) -> None:
    crm.check()
    assert crm.apply([lapse(n) for n in range(3)]) == [None] * 3
    assert crm.client.allowance.remaining is not None
    assert sleeps == []


@pytest.mark.parametrize(("used", "floor", "pause"), [
    (None, 5_000, 0.0),       # no header seen yet
    (10_000, 5_000, 0.0),     # 5,000 left: at the floor
    (12_500, 5_000, 2.5),     # 2,500 left: half-way down
    (15_000, 5_000, 5.0),     # nothing left
    (15_500, 5_000, 5.0),     # over the limit (Salesforce allows a little overage)
    (14_999, 0, 0.0),         # no floor: never slow down
])
def test_the_pause_grows_from_nothing_at_the_floor_to_the_maximum_at_zero(
    used: int | None, floor: int, pause: float
) -> None:
    allowance = ApiAllowance(floor, max_pause=5.0, sleep=lambda _: None)
    if used is not None:
        allowance.observe(f"api-usage={used}/15000; per-app-api-usage=17/250(appName=winback)")
    assert allowance.pause_seconds() == pytest.approx(pause)
