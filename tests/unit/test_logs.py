"""The JSON log line: exactly what ``json.dumps`` writes of its fields, objects included."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from worker import logs


class _Account:
    def __structlog__(self) -> str:
        return "account 001"


@pytest.fixture
def json_logs() -> Iterator[None]:
    logs.configure("json", "info")
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("json_logs")
def test_a_json_line_is_json_dumps_of_its_fields_with_objects_rendered_by_structlog(
        capsys: pytest.CaptureFixture[str]) -> None:
    structlog.get_logger("t").info("event_handled", event_id="e1", actions=3, account=_Account(),
                                   when=("a", 1), stage=None)
    structlog.get_logger("t").info("event_handled", event_id="e2", password="s3cret")
    first, second = capsys.readouterr().err.splitlines()
    fields = json.loads(first)
    assert first == json.dumps({"event_id": "e1", "actions": 3, "account": "account 001",
                                "when": ["a", 1], "stage": None, "event": "event_handled",
                                "level": "info", "timestamp": fields["timestamp"]})
    assert json.loads(second)["password"] == "[redacted]"
