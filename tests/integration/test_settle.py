"""Settling with one flush per batch, on a real broker: exactly the deliveries named are acked,
queued publishes go out with the commit, and a closed channel refuses as pika's own calls do."""

from __future__ import annotations

import uuid
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelWrongStateError

from tests.integration.broker import channel, require_broker
from worker.settle import ack_all, unflushed


def _queue(ch: Any, bodies: int) -> str:
    name = f"winback-test-settle-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(name, auto_delete=False)
    for i in range(bodies):
        ch.basic_publish("", name, str(i).encode())
    return name


def _take(ch: Any, queue: str, count: int) -> list[tuple[int, bytes]]:
    taken = []
    for _ in range(count):
        method, _props, body = ch.basic_get(queue)
        assert method is not None
        taken.append((method.delivery_tag, body))
    return taken


def test_ack_all_acks_the_tags_given_and_no_other_delivery() -> None:
    require_broker()
    with channel() as ch:
        queue = _queue(ch, 5)
        try:
            taken = _take(ch, queue, 5)
            ack_all(ch, [taken[0][0], taken[2][0], taken[4][0]])  # 1 and 3 stay unsettled
            ch.close()  # what is unacknowledged goes back to the queue
            with channel() as again:
                back = sorted(body for _, body in _take(again, queue, 2))
                assert back == [b"1", b"3"]
                assert again.basic_get(queue, auto_ack=True)[0] is None
        finally:
            with channel() as cleanup:
                cleanup.queue_delete(queue)


def test_publishes_queued_unflushed_reach_the_queue_with_the_commit() -> None:
    require_broker()
    with channel() as ch:
        queue = _queue(ch, 0)
        try:
            publisher = ch.connection.channel()
            publisher.tx_select()
            for i in range(3):
                unflushed(publisher).basic_publish("", queue, str(i).encode(),
                                                   pika.BasicProperties(delivery_mode=2))
            publisher.tx_commit()
            assert sorted(body for _, body in _take(ch, queue, 3)) == [b"0", b"1", b"2"]
        finally:
            ch.queue_delete(queue)


def test_a_closed_channel_refuses_ack_all_as_it_refuses_basic_ack() -> None:
    require_broker()
    with channel() as ch:
        ch.close()
        with pytest.raises(ChannelWrongStateError):
            ch.basic_ack(1)
        with pytest.raises(ChannelWrongStateError):
            ack_all(ch, [1, 2])
