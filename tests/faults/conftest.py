"""The fault suite's fixtures (the integration tests' own), and its one summary line at the end."""

from __future__ import annotations

from typing import Any

from tests.faults.tally import TALLY
from tests.integration.conftest import names  # noqa: F401 - the same uniquely named topology


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.scenarios:
        terminalreporter.write_line(TALLY.line())
