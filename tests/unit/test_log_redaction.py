"""The log's last line of defence: a value under a secret-looking key is never written."""

from __future__ import annotations

import pytest

from worker.logs import _redact


@pytest.mark.parametrize("key", ["password", "access_token", "Client_Secret", "AUTHORIZATION",
                                 "amqp_url", "private_key_file"])
def test_a_secret_looking_key_is_redacted_whatever_its_case(key: str) -> None:
    assert _redact(None, "info", {key: "s3cret", "event": "x"}) == {key: "[redacted]", "event": "x"}


def test_other_keys_are_left_as_they_are() -> None:
    event = {"event": "event_handled", "event_id": "e1", "account_id": "001", "actions": 3}
    assert _redact(None, "info", dict(event)) == event


def test_a_secret_looking_key_among_ordinary_ones_is_redacted_and_only_it() -> None:
    event = {"event": "connected", "event_id": "e1", "amqp_url": "amqp://u:p@h", "actions": 3}
    assert _redact(None, "info", event) == {"event": "connected", "event_id": "e1",
                                            "amqp_url": "[redacted]", "actions": 3}
