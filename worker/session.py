"""The AMQP session: connect, declare, consume and settle, all on the main thread.

The main thread owns the connection and only does AMQP work, so heartbeats keep flowing however
slow the CRM is. Deliveries go to the processing side (``worker.processing``); its results come
back through ``add_callback_threadsafe`` and are settled here, a batch at a time (``worker.settle``:
what the batch sends in one broker transaction, then the acks). A message is acked only after its
CRM writes are committed and the broker has taken what it sends; anything not acked when the
connection goes returns to the queue.

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
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from worker.policy import Pause
from worker.processing import Delivery, ProcessingLanes
from worker.settings import Settings
from worker.settle import ATTEMPTS_HEADER, Settler
from worker.stop import StopToken
from worker.topology import Topology

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
        self._arrived: list[Delivery] = []  # this I/O-loop turn's deliveries, for the lanes
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
        self._settler = Settler(settings.parking_queue, topology, metrics, self._partitions,
                                lambda pause: self._on_pause(pause, self))
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
            self._arrived = []
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
            self._turn(connection, LOOP_TICK)
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

    def _turn(self, connection: BlockingConnection, time_limit: float) -> None:
        """One turn of the I/O loop: frames in and out, results settled, then what arrived meanwhile
        handed to the lanes in one go (a group per lane, not a hand-over per delivery)."""
        connection.process_data_events(time_limit=time_limit)
        self._loop_at = time.monotonic()
        arrived = self._arrived
        if not arrived:
            return
        self._arrived = []
        with self._settled:
            if self._in_flight == 0:
                self._busy_since = self._loop_at
            self._in_flight += len(arrived)
        self._last_activity = self._loop_at
        self._processing.submit(arrived)

    def _on_message(self, generation: int, _channel: BlockingChannel, method: Any, props: Any,
                    body: bytes) -> None:
        """Called by ``process_data_events`` for each delivery: kept for the end of the turn."""
        tag = method.delivery_tag
        self._partitions.received(method.consumer_tag, tag)
        headers = props.headers or {}  # decoded for this delivery alone: no copy needed
        attempts = int(headers.get(ATTEMPTS_HEADER, 0) or 0)
        message = Message(tag, method.routing_key, body, attempts)
        self._arrived.append(Delivery(generation, message, headers))

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
                self._turn(connection, 0.05)
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
            self._turn(connection, 0.1)
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
            stopping = self._draining.is_set() and self._stop.is_set()
            self._settler.settle(channel, publisher, deliveries, results, stopping)
        finally:
            for delivery in deliveries:
                self._partitions.settled(delivery.message.tag)
            self._count_settled(len(deliveries))


def _broker_error(exc: BaseException) -> str:
    """What pika says, without the URL (which holds the password)."""
    return f"{type(exc).__name__}: {exc}"
