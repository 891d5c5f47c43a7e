"""A fresh HTTPS test org per test, and the Salesforce adapter logged in to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings
from worker.crm.salesforce import SalesforceCrm


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SalesforceServer]:
    with SalesforceServer(tmp_path) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause the adapter asked for: recorded, never slept."""
    return []


@pytest.fixture
def crm(server: SalesforceServer, sleeps: list[float]) -> Iterator[SalesforceCrm]:
    adapter = SalesforceCrm.from_settings(jwt_settings(server), retry=FAST_RETRY,
                                          sleep=sleeps.append)
    yield adapter
    adapter.close()
