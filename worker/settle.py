"""Settling on the wire: a batch's frames are queued and the socket flushed once, not per frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel


def unflushed(channel: BlockingChannel) -> Channel:
    """The asynchronous channel under ``channel``: its ``basic_ack``/``basic_publish`` only queue
    the frame on the connection's output buffer.

    The one place that reaches into pika. ``BlockingChannel.basic_ack`` and ``basic_publish`` (out
    of confirm mode) are that same call followed by a flush that polls the socket until the whole
    output buffer is written: settled one by one, a batch paid a poll per message, the main
    thread's largest cost. The checks are the same either way (the asynchronous call raises
    ``ChannelWrongStateError`` on a closed channel, before any frame is queued); what is queued
    goes out with the next flush of any channel of the connection (the blocking API's flush
    empties the connection's whole buffer), which the caller makes at once: ``tx_commit`` after
    queued publishes, the last ``basic_ack`` of ``ack_all``.
    """
    return cast(Channel, channel._impl)  # pika's own attribute, stable since 1.0: see above


def ack_all(channel: BlockingChannel, tags: Sequence[int]) -> None:
    """Ack every delivery of ``tags`` (one by one: never a ``multiple`` ack, which would reach
    deliveries not settled yet) with one flush of the socket, by the last, public, ack."""
    if not tags:
        return
    queue = unflushed(channel)
    for tag in tags[:-1]:
        queue.basic_ack(tag)
    channel.basic_ack(tags[-1])
