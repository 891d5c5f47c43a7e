"""The event contract: what parses, and the reason given for what does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.errors import InvalidEventError, UnknownEventTypeError
from handlers.events import LapsedData, _loads, json_schemas, parse_event, peek_ids

SAMPLES = Path(__file__).parents[2] / "config" / "samples"


def _event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "specversion": "1.0", "id": "evt-1", "source": "crm/test", "type": "crm.customer.lapsed",
        "data": {"account_id": "A1", "account_name": "Acme", "lapsed_at": "2026-11-01"},
    }
    return base | overrides


def test_every_sample_event_parses() -> None:
    files = sorted(SAMPLES.glob("**/*.json"))
    assert files
    for path in files:
        loaded = json.loads(path.read_text())
        for raw in loaded if isinstance(loaded, list) else [loaded]:
            assert parse_event(json.dumps(raw)).id == raw["id"]


def test_lapsed_event_parses_with_typed_data() -> None:
    event = parse_event(json.dumps(_event()))
    assert isinstance(event.data, LapsedData)
    assert event.account_id == "A1"
    assert event.data.do_not_contact is False


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"{nope", InvalidEventError, "body is not JSON"),
        (b"[1, 2]", InvalidEventError, "expected an object"),
        (json.dumps(_event(specversion="0.3")).encode(), InvalidEventError, "specversion"),
        (json.dumps(_event(type="crm.order.placed")).encode(), UnknownEventTypeError,
         "unknown event type 'crm.order.placed'"),
        (json.dumps(_event(data={"account_id": "A1"})).encode(), InvalidEventError,
         "data.account_name: Field required"),
        (json.dumps(_event(type="crm.complaint.logged", data={
            "account_id": "A", "complaint_id": "C", "logged_at": "2026-11-01T10:00:00Z",
            "severity": "urgent", "summary": "x"})).encode(), InvalidEventError, "data.severity"),
        (json.dumps(_event(type="crm.complaint.logged", data={
            "account_id": "A", "complaint_id": "C", "logged_at": "2026-11-01T10:00:00",
            "severity": "low", "summary": "x"})).encode(), InvalidEventError, "timezone"),
        (json.dumps(_event(type="crm.meeting.held", data={
            "account_id": "A", "meeting_id": "M", "held_at": "2026-11-01T10:00:00Z",
            "kind": "check_in", "sentiment": 5})).encode(), InvalidEventError, "data.sentiment"),
        (b"\xff\xfe", InvalidEventError, "body is not JSON"),
    ],
)
def test_invalid_bodies_are_refused_with_a_reason(body: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=None) as caught:
        parse_event(body)
    assert message in str(caught.value)


def test_peek_ids_finds_what_it_can_in_an_invalid_body() -> None:
    body = json.dumps(_event(data={"account_id": "A9"}))
    assert peek_ids(body) == {"event_id": "evt-1", "event_type": "crm.customer.lapsed", "account_id": "A9"}
    assert peek_ids(b"garbage") == {}


def test_published_schemas_match_the_models(tmp_path: Path) -> None:
    schemas = json_schemas()
    assert set(schemas) == {"crm.customer.lapsed", "crm.complaint.logged", "crm.meeting.held"}
    lapsed = schemas["crm.customer.lapsed"]
    assert lapsed["$defs"]["Data"]["required"] == ["account_id", "account_name", "lapsed_at"]
    shipped = Path(__file__).parents[2] / "config" / "schemas" / "crm.customer.lapsed.schema.json"
    assert json.loads(shipped.read_text()) == lapsed, "run `make schemas` after changing the models"


BODIES: list[bytes | str] = [
    b'{"a": 1, "b": 2, "a": 3}', b'{"n": 123456789012345678901234567890, "m": -0.0, "e": 1e400}',
    b'{"x": NaN, "y": -Infinity, "z": 5e-324, "w": 1e-400}', b'"\\ud83d\\ude00 \\u00e9"',
    b'"\\ud800"', "\ufeff{}", b"\xef\xbb\xbf{}", '{"a": "\ud800"}', '{"a": 1}'.encode("utf-16"),
    b"[" * 300 + b"]" * 300, b'{"a": "x\ny"}', b"[1,]", b"[01]", b"[.5]", b"", b"[1] [2]",
    b"\xff\xfe", b'["\\x"]', b" \t\r\n[1, \n 2.50] \n", b'{"": {"k": [true, false, null]}}',
]


def _json_says(body: bytes | str) -> str:
    try:
        return repr(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_a_body_is_read_as_json_reads_it_and_refused_in_its_words(body: bytes | str) -> None:
    expected = _json_says(body)
    try:
        got = repr(_loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        got = f"refused: {exc}"
    assert got == expected


def test_a_malformed_body_is_parked_with_json_s_own_reason() -> None:
    body = b'{"specversion": "1.0",}'
    with pytest.raises(InvalidEventError) as caught:
        parse_event(body)
    assert str(caught.value) == f"body is not JSON: {_json_says(body).removeprefix('refused: ')}"
    assert "line 1 column 23 (char 22)" in str(caught.value)
