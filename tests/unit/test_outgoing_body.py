"""An outgoing event's body: the payload's JSON, and what JSON cannot hold refused as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from worker.settle import json_body


def test_the_body_is_the_payloads_json_with_its_keys_in_order() -> None:
    payload = {"id": "e1", "data": {"summary": "café", "sentiment": -0.5, "done": None},
               "tags": ["a", 1, True]}
    body = json_body(payload)
    assert list(json.loads(body)) == ["id", "data", "tags"]
    assert json.loads(body) == payload


def test_what_orjson_refuses_is_written_as_json_writes_it() -> None:
    assert json.loads(json_body({"big": 2**70})) == {"big": 2**70}
    assert json.loads(json_body({"n": {1: "one"}})) == {"n": {"1": "one"}}


def test_a_value_json_cannot_write_is_refused_as_before() -> None:
    with pytest.raises(TypeError):
        json_body({"due": datetime(2026, 12, 2, tzinfo=UTC)})
