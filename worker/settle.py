"""Settling a batch on the session's channels (main thread): what it sends, then its acks.

Every message the batch sends (outgoing events, timers, retry and parking copies) goes in one
broker transaction, then the acks: a message is acked only after its CRM writes are committed
(the processing side did that) and the broker has taken what it sends. Frames are queued and the
socket flushed once per batch for the publishes (by the commit) and once for the acks, not once
per message. Each disposition has its settler: its log line and metric, and whether it is acked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import orjson
import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel

from worker.dispatch import Result
from worker.metrics import Metrics
from worker.policy import Ack, Park, Pause, Retry
from worker.processing import Delivery
from worker.topology import Topology, account_headers

if TYPE_CHECKING:  # for the annotation only: worker.partitions imports ack_all from here
    from worker.partitions import Partitions

ATTEMPTS_HEADER = "x-winback-attempts"


# Datetimes and dataclasses are refused as json refuses them, not written in orjson's own way.
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_body(payload: dict[str, Any]) -> bytes:
    """An outgoing event's body: compact JSON by orjson (a timer or two per event, each a
    ``json.dumps`` before); what orjson refuses (an int past 64 bits, a key that is not a string)
    is written by ``json.dumps``, as before, and what neither can write raises as before."""
    try:
        return orjson.dumps(payload, option=_STRICT)
    except orjson.JSONEncodeError:
        return json.dumps(payload).encode()


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


class Settler:
    """Settles the batches of one session; ``stopping`` withholds the acks (``Partitions.ack``)."""

    def __init__(self, parking_queue: str, topology: Topology, metrics: Metrics,
                 partitions: Partitions, on_pause: Callable[[Pause], None]) -> None:
        self._parking_queue, self._topology, self._metrics = parking_queue, topology, metrics
        self._partitions, self._on_pause = partitions, on_pause
        self._log = structlog.get_logger("winback.consumer")
        # Each logs on the logger given and says whether the delivery is acked (a paused one is
        # kept unacknowledged).
        self._settlers: dict[type, Callable[[Any, Delivery, Any, dict[str, Any]], bool]] = {
            Ack: self._settle_ack, Retry: self._settle_retry, Park: self._settle_park,
            Pause: self._settle_pause}
        # The copy of the message a disposition sends before the ack: (queue, extra headers).
        self._copies: dict[type, Callable[[Delivery, Any], tuple[str, dict[str, Any]]]] = {
            Retry: self._retry_copy, Park: self._park_copy}

    def settle(self, channel: BlockingChannel, publisher: BlockingChannel,
               deliveries: Sequence[Delivery], results: Sequence[Result], stopping: bool) -> None:
        # One commit for the batch, not one confirm per message: a burst of timers coming back
        # to wait again settled several times slower one by one, and held up the due ones
        # behind it. The commit hands the broker every message before any ack.
        now = datetime.now(UTC)
        sent = sum(self._send(publisher, d, r, now) for d, r in zip(deliveries, results, strict=True))
        if sent:
            publisher.tx_commit()  # the one flush of what the batch published
        # Each line carries the result's fields as a bound logger would, without binding one
        # per message (a call's own fields win over the result's, as over bound ones). One
        # logger for the batch: the lazy one from ``get_logger`` would build one per line.
        log = self._log.bind()
        acked = [delivery.message.tag for delivery, result in zip(deliveries, results, strict=True)
                 if self._settlers[type(result.disposition)](log, delivery, result, result.log)]
        self._partitions.ack(channel, acked, stopping=stopping)  # after the commit, one flush

    def _send(self, publisher: BlockingChannel, delivery: Delivery, result: Result, now: datetime) -> int:
        """Queue (uncommitted, unflushed: the commit sends them) what settling ``delivery`` sends;
        returns how many messages."""
        queue = unflushed(publisher)
        for event in result.publishes:
            # Outgoing events go to the exchange; timers to the delay tier they wait in next.
            exchange, routing_key = self._topology.route(event, now)
            queue.basic_publish(
                exchange, routing_key, json_body(event.payload),
                pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=event.message_id, type=event.routing_key,
                                     headers=account_headers(event.payload)))
        copy = self._copies.get(type(result.disposition))
        if copy is None:
            return len(result.publishes)
        name, headers = copy(delivery, result.disposition)
        queue.basic_publish("", name, delivery.message.body,
                            pika.BasicProperties(headers=delivery.headers | headers, delivery_mode=2))
        return len(result.publishes) + 1

    def _retry_copy(self, delivery: Delivery, retry: Retry) -> tuple[str, dict[str, Any]]:
        return self._topology.retry_queue(retry.tier), {
            ATTEMPTS_HEADER: delivery.message.attempts + int(retry.spends_attempt),
            "x-winback-last-error": retry.reason[:1000]}

    def _park_copy(self, delivery: Delivery, park: Park) -> tuple[str, dict[str, Any]]:
        return self._parking_queue, {
            "x-winback-error": park.error,
            "x-winback-reason": park.reason[:4000],
            "x-winback-routing-key": delivery.message.routing_key,
            "x-winback-parked-at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _settle_ack(self, log: Any, _delivery: Delivery, result: Result,
                    fields: dict[str, Any]) -> bool:
        for suppression in result.suppressed:
            log.info("action_suppressed", **(fields | {
                "action": suppression.action, "key": suppression.key,
                "rule_id": suppression.rule_id, "reason": suppression.reason}))
            self._metrics.suppressed_action(suppression.action)
        self._metrics.count(result.signals)
        log.info("event_handled", **fields)
        self._metrics.settled("handled")
        return True

    def _settle_retry(self, log: Any, delivery: Delivery, result: Result,
                      fields: dict[str, Any]) -> bool:
        retry: Retry = result.disposition  # type: ignore[assignment]  # the table picked Retry
        attempts = delivery.message.attempts + int(retry.spends_attempt)
        log.warning("event_retry_scheduled", **(fields | {
            "delay": retry.delay, "attempt": attempts, "held_back": not retry.spends_attempt}))
        self._metrics.settled("retried")
        return True

    def _settle_park(self, log: Any, _delivery: Delivery, result: Result,
                     fields: dict[str, Any]) -> bool:
        park: Park = result.disposition  # type: ignore[assignment]  # the table picked Park
        log.error("event_parked", **(fields | {"reason": park.reason}))
        self._metrics.settled("parked")
        return True

    def _settle_pause(self, _log: Any, _delivery: Delivery, result: Result,
                      _fields: dict[str, Any]) -> bool:
        """Kept unacknowledged (no attempt spent), and consumption pauses: handing the partitions
        back returns it to its queue ahead of the account's later events (a nack now would put it
        behind them). One line is logged by the pause, not one per message."""
        self._metrics.settled("released")
        self._on_pause(result.disposition)  # type: ignore[arg-type]  # the table picked Pause
        return False
