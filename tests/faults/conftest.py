"""The fault suite's fixtures, and its one summary line at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.tally import TALLY
from tests.integration.broker import Names, delete_all, new_names, require_broker


@pytest.fixture
def names() -> Iterator[Names]:
    require_broker()
    names = new_names()
    yield names
    delete_all(names, (0.2, 0.2, 0.2))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.scenarios:
        terminalreporter.write_line(TALLY.line())
