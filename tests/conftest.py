"""Suite-wide hooks: leave the shared broker as clean as the run found it."""

from __future__ import annotations

import pika
import pytest

from tests.integration.broker import sweep_leftovers


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        swept = sweep_leftovers()
    except pika.exceptions.AMQPError:
        return  # no broker at the end of the run: nothing of ours can be left on it
    if swept:
        session.config.get_terminal_writer().line(f"\nswept {swept} queues the tests left on the broker")
