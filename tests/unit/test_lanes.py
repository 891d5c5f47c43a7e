"""Which lane a delivery goes to: its account's, named by the header that chose its partition, or
read from the body when a message came without one."""

from __future__ import annotations

import json
import zlib

from worker.dispatch import Message
from worker.processing import Delivery, lane_of
from worker.topology import ACCOUNT_HEADER

LANES = 8


def _delivery(account_in_body: str | None, headers: dict[str, object]) -> Delivery:
    data = {"account_id": account_in_body} if account_in_body else {}
    body = json.dumps({"id": "e1", "type": "crm.customer.lapsed", "data": data}).encode()
    return Delivery(1, Message(1, "crm.customer.lapsed", body), dict(headers))


def _lane(account: str) -> int:
    return zlib.crc32(account.encode()) % LANES


def test_the_account_header_names_the_lane_without_the_body_being_read() -> None:
    assert lane_of(_delivery("001", {ACCOUNT_HEADER: "001"}), LANES) == _lane("001")
    # The header chose the partition, so the lane follows it (the body is not looked at).
    assert _lane("001") != _lane("002")
    assert lane_of(_delivery("002", {ACCOUNT_HEADER: "001"}), LANES) == _lane("001")


def test_a_message_without_the_header_goes_to_its_bodys_account_lane() -> None:
    accounts = [f"acc-{i}" for i in range(20)]  # some hash to other lanes than the empty account
    assert [lane_of(_delivery(a, {}), LANES) for a in accounts] == [_lane(a) for a in accounts]
    assert [lane_of(_delivery(a, {ACCOUNT_HEADER: ""}), LANES) for a in accounts] == [
        _lane(a) for a in accounts]


def test_a_body_that_is_not_an_event_goes_to_the_lane_of_no_account() -> None:
    delivery = Delivery(1, Message(1, "x", b"not json"), {})
    assert lane_of(delivery, LANES) == _lane("")
