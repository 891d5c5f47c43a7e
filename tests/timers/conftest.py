"""Timer tests: a real broker topology per test, and each CRM adapter on a fresh store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters import ADAPTERS, open_crm
from tests.integration.conftest import names  # noqa: F401 - the same uniquely named topology
from worker.crm.port import Crm


@pytest.fixture(params=ADAPTERS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    with open_crm(request.param, tmp_path) as adapter:
        yield adapter
