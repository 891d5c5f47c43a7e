"""The JSON log line: its fields, in order, rendered as ``json.dumps`` rendered them (compact)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import structlog

from worker import logs


@dataclass(frozen=True)
class _Stamp:
    name: str


class _Account:
    def __structlog__(self) -> str:
        return "account 001"


@pytest.fixture
def json_logs() -> Iterator[None]:
    logs.configure("json", "info")
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("json_logs")
def test_a_json_line_holds_its_fields_in_order_with_objects_rendered_by_structlog(
        capsys: pytest.CaptureFixture[str]) -> None:
    structlog.get_logger("t").info("event_handled", event_id="e1", actions=3, account=_Account(),
                                   when=("a", 1), stage=None, note="café")
    structlog.get_logger("t").info("event_handled", event_id="e2", password="s3cret")
    first, second = capsys.readouterr().err.splitlines()
    fields = json.loads(first)
    assert list(fields.items()) == [
        ("event_id", "e1"), ("actions", 3), ("account", "account 001"), ("when", ["a", 1]),
        ("stage", None), ("note", "café"), ("event", "event_handled"), ("level", "info"),
        ("timestamp", fields["timestamp"])]
    assert json.loads(second)["password"] == "[redacted]"


@pytest.mark.usefixtures("json_logs")
def test_values_json_cannot_write_are_rendered_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    when, stamp = datetime(2026, 12, 2, 9, 30, tzinfo=UTC), _Stamp("s1")
    for value in (when, stamp, {1: "one"}, 2**70):  # a line each: one cannot hide another
        structlog.get_logger("t").info("x", value=value)
    lines = capsys.readouterr().err.splitlines()
    # What json hands to ``default`` (structlog's: repr) is rendered by it, as before.
    assert [json.loads(line)["value"] for line in lines] == [
        repr(when), repr(stamp), {"1": "one"}, 2**70]
