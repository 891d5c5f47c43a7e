"""The AMQP session: connect, declare, consume and settle, all on the main thread.

The main thread owns the connection and only does AMQP work, so heartbeats keep flowing however
slow the CRM is. Deliveries go to the processing side (``worker.processing``); its results come
back through ``add_callback_threadsafe`` and are settled here, a batch at a time: every message
the batch sends (outgoing events, timers, retry and parking copies) in one broker transaction,
then the acks. A message is acked only after its CRM writes are committed and the broker has taken
what it sends; anything not acked when the connection goes returns to the queue.

The session consumes every partition queue (``Topology.partition_queues``); each has a single
active consumer, so of several replicas the broker delivers a partition to one at a time. A hand-over
must not let a later event of an account overtake an earlier one still in hand, and RabbitMQ 3.10
activates the next consumer before it puts a departed consumer's unacknowledged messages back (they
come after newer ones). So a stopping session handles everything it was given before it cancels
(``_finish``); only a crash, or a stop past its grace period, hands messages back unacknowledged.

Seams for operations: ``pause_consumption``/``resume_consumption`` (any thread) hand the partitions
back (as above) and take them again once resumed; ``progress()`` says when a message was last
settled and whether the I/O loop is still turning.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import (
    AMQPError,
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
)

from handlers.errors import BrokerLostError, BrokerRefusedError, ConfigError
from worker.amqp import connection_parameters
from worker.dispatch import Message, Result
from worker.metrics import Metrics
from worker.partitions import Partitions
from worker.policy import Ack, Park, Pause, Retry
from worker.processing import Delivery, ProcessingLanes
from worker.settings import Settings
from worker.settle import unflushed
from worker.stop import StopToken
from worker.topology import Topology, account_headers

ATTEMPTS_HEADER = "x-winback-attempts"
PRECONDITION_FAILED = 406
LOOP_TICK = 0.2  # seconds the I/O loop waits for frames before it looks at stop/pause again
LOOP_STALLED_AFTER = 10.0  # an I/O loop silent this long is not alive
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0  # seconds between connection attempts, doubling
REFUSALS = (ProbableAuthenticationError, ProbableAccessDeniedError, ssl.SSLCertVerificationError)
OnPause = Callable[[Pause, "AmqpSession"], None]


@dataclass(frozen=True)
class Progress:
    """For health checks: monotonic times of the last settle, of the last I/O-loop turn, and since
    when messages have been waiting (``busy_since``), with how many are unsettled."""

    last_settled_at: float
    io_loop_at: float
    busy_since: float = 0.0
    in_flight: int = 0

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds the processing side has settled nothing while messages waited (0: none wait)."""
        if self.in_flight <= 0:
            return 0.0
        return (now or time.monotonic()) - max(self.last_settled_at, self.busy_since)

    def io_loop_alive(self, now: float | None = None) -> bool:
        return (now or time.monotonic()) - self.io_loop_at < LOOP_STALLED_AFTER


class AmqpSession:
    """Consumes the work queue until the stop token is set; reconnects when the broker goes."""

    def __init__(self, settings: Settings, topology: Topology, processing: ProcessingLanes,
                 metrics: Metrics, stop: StopToken, on_pause: OnPause | None = None) -> None:
        self._settings, self._topology, self._processing = settings, topology, processing
        self._metrics, self._stop = metrics, stop
        self._on_pause = on_pause or (lambda _pause, session: session.pause_consumption())
        self._log = structlog.get_logger("winback.consumer")
        self._params = connection_parameters(settings)
        self._settled = threading.Condition()  # guards _in_flight; never taken by a signal handler
        self._in_flight = 0
        self._paused = threading.Event()
        self._draining = threading.Event()
        self._generation = 0
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._partitions = Partitions(topology.partition_queues, topology.presence_exchange,
                                      settings.rebalance_seconds)
        self._on_partition: Any = None  # the pika callback of the current connection
        self._publisher: BlockingChannel | None = None  # in tx mode: a batch's messages, one commit
        self._last_settled = self._last_activity = self._loop_at = self._busy_since = time.monotonic()
        # Each says whether the delivery is acked (a paused one is kept unacknowledged).
        self._settlers: dict[type, Callable[[Delivery, Any, dict[str, Any]], bool]] = {
            Ack: self._settle_ack, Retry: self._settle_retry, Park: self._settle_park,
            Pause: self._settle_pause}
        # The copy of the message a disposition sends before the ack: (queue, extra headers).
        self._copies: dict[type, Callable[[Delivery, Any], tuple[str, dict[str, Any]]]] = {
            Retry: self._retry_copy, Park: self._park_copy}
        self.connections_opened = 0
        metrics.in_flight.set_function(lambda: float(self._in_flight))
        self._started = False

    # --- any thread ----------------------------------------------------------------------------

    def started(self) -> bool:
        """Has ``run`` begun (start-up checks are over)?"""
        return self._started

    def is_consuming(self) -> bool:
        """True while a channel is open and taking deliveries (the readiness probe)."""
        return (self._channel is not None and self._partitions.subscribed
                and not self._draining.is_set() and not self._paused.is_set())

    def stop(self) -> None:
        """Ask the whole worker to stop (from any thread but a signal handler)."""
        self._stop.request()

    def pause_consumption(self) -> None:
        """Stop starting batches (within one loop tick); what is started still settles, then the
        partitions go back to the broker until ``resume_consumption``."""
        self._paused.set()

    def resume_consumption(self) -> None:
        self._paused.clear()

    def progress(self) -> Progress:
        return Progress(self._last_settled, self._loop_at, self._busy_since, self._in_flight)

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet settled."""
        return self._in_flight

    def wait_settled(self, timeout: float) -> bool:
        """Block until nothing received is unsettled (True), or ``timeout`` passes (False)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._in_flight == 0, timeout)

    # --- main thread ---------------------------------------------------------------------------

    def run(self, exit_when_idle: float | None = None) -> None:
        """Consume until stopped (or, with ``exit_when_idle``, until the queue has been empty and
        nothing in flight for that many seconds)."""
        self._processing.start(self._post)
        self._loop_at, self._started = time.monotonic(), True
        delay, refused = RECONNECT_FIRST, False
        try:
            while not self._stop.stopping():
                if self._paused.is_set():  # the partitions are with the other replicas meanwhile
                    self._loop_at = time.monotonic()
                    time.sleep(LOOP_TICK)
                    continue
                try:
                    self._session(exit_when_idle)
                    delay, refused = RECONNECT_FIRST, False
                except BrokerRefusedError as exc:
                    if self.connections_opened == 0:  # a wrong password or CA at start-up: stop
                        raise ConfigError(f"the broker refused the worker: {exc}") from exc
                    if not refused:  # reported once; retried quietly until it works again
                        self._log.error("broker_refused", error=str(exc), retry_in=delay)
                    refused = True
                    delay = self._back_off(delay)
                except BrokerLostError as exc:
                    self._metrics.broker_reconnects.inc()
                    self._log.warning("broker_lost", error=str(exc), retry_in=delay)
                    delay = self._back_off(delay)
        finally:
            self._processing.close(self._settings.grace_period)

    def _back_off(self, delay: float) -> float:
        """Wait ``delay`` (unless stopped) with the loop marked alive: waiting is its job now."""
        deadline = time.monotonic() + delay
        while not self._stop.stopping() and time.monotonic() < deadline:
            self._loop_at = time.monotonic()
            time.sleep(0.1)
        return min(delay * 2, RECONNECT_MAX)

    def _connect(self) -> BlockingConnection:
        """Open the connection, converting pika's errors once, here."""
        try:
            connection = pika.BlockingConnection(self._params)
        except REFUSALS as exc:
            raise BrokerRefusedError(_broker_error(exc)) from exc
        except (AMQPError, OSError) as exc:
            raise BrokerLostError(_broker_error(exc)) from exc
        self.connections_opened += 1
        return connection

    def _session(self, exit_when_idle: float | None) -> None:
        connection = self._connect()
        self._draining.clear()
        try:
            channel = connection.channel()
            self._declare(channel)
            channel.confirm_delivery()
            # Per consumer: quorum queues have no prefetch shared by a channel's consumers.
            channel.basic_qos(prefetch_count=self._settings.partition_prefetch)
            publisher = connection.channel()
            publisher.tx_select()
            self._generation += 1
            self._processing.begin(self._generation)
            with self._settled:
                self._in_flight = 0
            self._connection, self._channel = connection, channel
            self._publisher = publisher
            self._metrics.connected.set(1)
            self._subscribe(channel)
            self._loop(connection, channel, exit_when_idle)
            if self._stop.is_set():
                self._finish(connection, channel)
            self._hand_back(connection)
        except AMQPError as exc:
            raise BrokerLostError(_broker_error(exc)) from exc
        finally:
            self._connection, self._channel = None, None
            self._publisher = None
            self._metrics.connected.set(0)
            if connection.is_open:
                connection.close()

    def _loop(self, connection: BlockingConnection, channel: BlockingChannel,
              exit_when_idle: float | None) -> None:
        while not self._stop.stopping() and not self._paused.is_set():
            connection.process_data_events(time_limit=LOOP_TICK)
            self._loop_at = time.monotonic()
            self._partitions.tick(channel, self._on_partition)
            if exit_when_idle is not None and self._idle_for(channel, exit_when_idle):
                self._log.info("queue_drained")
                self._stop.request()

    def _subscribe(self, channel: BlockingChannel) -> None:
        """One consumer per partition; the broker makes it active where no other replica is."""
        self._on_partition = functools.partial(self._on_message, self._generation)
        self._partitions.open(channel, self._on_partition)
        self._log.info("consuming", partitions=self._settings.partitions,
                       queue=self._settings.queue, prefetch=self._settings.partition_prefetch,
                       replica=self._partitions.replica)

    def _declare(self, channel: BlockingChannel) -> None:
        try:
            self._topology.declare(channel)
        except ConnectionClosedByBroker as exc:
            if "unknown exchange type" not in str(exc.reply_text):
                raise
            raise ConfigError(
                f"the broker refused the topology: {exc.reply_text}. The work queues need the "
                "plugin bundled with RabbitMQ: rabbitmq-plugins enable "
                "rabbitmq_consistent_hash_exchange") from exc
        except ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED:
                raise
            # An existing queue or exchange with other arguments: retrying cannot fix it.
            raise ConfigError(
                f"the broker refused the topology: {exc.reply_text}. An exchange or queue of that "
                "name exists with other settings: restore them (WINBACK_DELIVERY_LIMIT, "
                "WINBACK_RETRY_DELAYS...) or delete it") from exc

    def _on_message(self, generation: int, _channel: BlockingChannel, method: Any, props: Any,
                    body: bytes) -> None:
        self._partitions.received(method.consumer_tag, method.delivery_tag)
        headers = dict(props.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0) or 0)
        message = Message(method.delivery_tag, method.routing_key, body, attempts)
        with self._settled:
            if self._in_flight == 0:
                self._busy_since = time.monotonic()
            self._in_flight += 1
        self._last_activity = time.monotonic()
        self._processing.submit(Delivery(generation, message, headers))

    def _idle_for(self, channel: BlockingChannel, seconds: float) -> bool:
        if self._in_flight or time.monotonic() - self._last_activity < seconds:
            return False
        ready = sum(channel.queue_declare(q, passive=True).method.message_count
                    for q in self._topology.partition_queues)
        retrying = sum(
            channel.queue_declare(self._topology.retry_queue(t), passive=True).method.message_count
            for t in range(len(self._topology.retry_delays))
        )
        return bool(ready + retrying == 0)

    def _finish(self, connection: BlockingConnection, channel: BlockingChannel) -> None:
        """Stopping: handle every message received before giving the partitions up.

        The acks are withheld meanwhile, so the prefetch stays full and no newer message comes;
        once nothing is unsettled the subscriptions are cancelled (the broker activates the next
        replica, which can only receive newer messages) and the withheld acks sent. Messages
        handed back unacknowledged instead would be redelivered behind newer ones: RabbitMQ 3.10
        activates the next consumer before it has put them back.
        """
        self._draining.set()
        deadline = time.monotonic() + self._settings.grace_period
        for cancel in (True, False):  # and once more after the cancel, for late deliveries
            while self._in_flight > 0 and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.05)
                self._loop_at = time.monotonic()
            if cancel:
                self._partitions.cancel_all(channel)
        handled = self._partitions.ack_withheld(channel)
        self._log.info("partitions_handed_over", handled=handled, unfinished=self._in_flight)

    def _hand_back(self, connection: BlockingConnection) -> None:
        """Pause (or a stop past its grace period): let the started batches settle while the
        ones not started stay unacknowledged, for the connection's close to return them."""
        self._draining.set()
        self._processing.hold()
        held: list[Delivery] = []
        deadline = time.monotonic() + self._settings.grace_period
        while True:
            held += self._processing.unstarted()  # deliveries still arriving are kept too
            if self._in_flight <= len(held) or time.monotonic() >= deadline:
                break
            connection.process_data_events(time_limit=0.1)
            self._loop_at = time.monotonic()
        unfinished = self._in_flight - len(held)
        self._count_settled(self._in_flight)  # the close returns them all to the broker
        self._partitions.forget_unsettled()
        why = "stop" if self._stop.is_set() else "pause"
        self._log.info("stopped_consuming", reason=why, released=len(held), unfinished=unfinished)

    def _count_settled(self, count: int) -> None:
        with self._settled:
            self._in_flight -= count
            self._settled.notify_all()
        self._last_settled = self._last_activity = time.monotonic()

    # --- settling (main thread, called back from the processing side) --------------------------

    def _post(self, generation: int, batch: list[Delivery], results: list[Result]) -> None:
        """Processing thread: hand results to the main thread, which alone may use the channel."""
        connection = self._connection
        if connection is None:
            return
        try:
            connection.add_callback_threadsafe(functools.partial(self._settle, generation, batch, results))
        except AMQPError:
            self._log.warning("results_dropped_connection_closed", count=len(batch))

    def _settle(self, generation: int, deliveries: Sequence[Delivery], results: Sequence[Result]) -> None:
        channel, publisher = self._channel, self._publisher
        if generation != self._generation or channel is None or publisher is None:
            return  # that connection is gone: the broker redelivers; the CRM ledger dedupes
        try:
            # One commit for the batch, not one confirm per message: a burst of timers coming back
            # to wait again settled several times slower one by one, and held up the due ones
            # behind it. The commit hands the broker every message before any ack.
            now = datetime.now(UTC)
            sent = sum(self._send(publisher, d, r, now) for d, r in zip(deliveries, results, strict=True))
            if sent:
                publisher.tx_commit()  # the one flush of what the batch published
            # Each line carries the result's fields as a bound logger would, without binding one
            # per message (a call's own fields win over the result's, as over bound ones).
            acked = [delivery.message.tag for delivery, result in zip(deliveries, results, strict=True)
                     if self._settlers[type(result.disposition)](delivery, result, result.log)]
            stopping = self._draining.is_set() and self._stop.is_set()
            self._partitions.ack(channel, acked, stopping=stopping)  # after the commit, one flush
        finally:
            for delivery in deliveries:
                self._partitions.settled(delivery.message.tag)
            self._count_settled(len(deliveries))

    def _send(self, publisher: BlockingChannel, delivery: Delivery, result: Result, now: datetime) -> int:
        """Queue (uncommitted, unflushed: the commit sends them) what settling ``delivery`` sends;
        returns how many messages."""
        queue = unflushed(publisher)
        for event in result.publishes:
            # Outgoing events go to the exchange; timers to the delay tier they wait in next.
            exchange, routing_key = self._topology.route(event, now)
            queue.basic_publish(
                exchange, routing_key, json.dumps(event.payload).encode(),
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
        return self._settings.parking_queue, {
            "x-winback-error": park.error,
            "x-winback-reason": park.reason[:4000],
            "x-winback-routing-key": delivery.message.routing_key,
            "x-winback-parked-at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _settle_ack(self, _delivery: Delivery, result: Result, fields: dict[str, Any]) -> bool:
        for suppression in result.suppressed:
            self._log.info("action_suppressed", **(fields | {
                "action": suppression.action, "key": suppression.key,
                "rule_id": suppression.rule_id, "reason": suppression.reason}))
            self._metrics.suppressed_action(suppression.action)
        self._metrics.count(result.signals)
        self._log.info("event_handled", **fields)
        self._metrics.settled("handled")
        return True

    def _settle_retry(self, delivery: Delivery, result: Result, fields: dict[str, Any]) -> bool:
        retry: Retry = result.disposition  # type: ignore[assignment]  # the table picked Retry
        attempts = delivery.message.attempts + int(retry.spends_attempt)
        self._log.warning("event_retry_scheduled", **(fields | {
            "delay": retry.delay, "attempt": attempts, "held_back": not retry.spends_attempt}))
        self._metrics.settled("retried")
        return True

    def _settle_park(self, _delivery: Delivery, result: Result, fields: dict[str, Any]) -> bool:
        park: Park = result.disposition  # type: ignore[assignment]  # the table picked Park
        self._log.error("event_parked", **(fields | {"reason": park.reason}))
        self._metrics.settled("parked")
        return True

    def _settle_pause(self, _delivery: Delivery, result: Result, _fields: dict[str, Any]) -> bool:
        """Kept unacknowledged (no attempt spent), and consumption pauses: handing the partitions
        back returns it to its queue ahead of the account's later events (a nack now would put it
        behind them). One line is logged by the pause, not one per message."""
        self._metrics.settled("released")
        self._on_pause(result.disposition, self)  # type: ignore[arg-type]  # the table picked Pause
        return False


def _broker_error(exc: BaseException) -> str:
    """What pika says, without the URL (which holds the password)."""
    return f"{type(exc).__name__}: {exc}"
