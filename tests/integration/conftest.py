"""Integration fixtures: a real broker and a uniquely named topology per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.broker import Names, delete_all, new_names, require_broker


@pytest.fixture
def names() -> Iterator[Names]:
    require_broker()
    names = new_names()
    yield names
    delete_all(names, (0.2, 0.2, 0.2))
