"""Timer tests: a real broker topology per test, and each CRM adapter on a fresh store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters import ADAPTERS, open_crm
from tests.integration.broker import Names, delete_all, new_names, require_broker
from worker.crm.port import Crm


@pytest.fixture
def names() -> Iterator[Names]:
    require_broker()
    names = new_names()
    yield names
    delete_all(names, (0.2, 0.2, 0.2))


@pytest.fixture(params=ADAPTERS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    with open_crm(request.param, tmp_path) as adapter:
        yield adapter
