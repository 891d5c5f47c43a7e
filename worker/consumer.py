"""The AMQP consumer: pika on the main thread, handler work on a processing thread.

The main thread owns the connection and only does AMQP work, so heartbeats keep flowing however
slow the CRM is. Deliveries go to an inbox; the processing thread takes them in batches, runs the
processor and hands the results back with ``add_callback_threadsafe``; ``_settle`` then publishes
(retry, park, outgoing events) and acks on the main thread. A message is acked only after its CRM
writes are committed; anything not acked when the connection goes returns to the queue.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError, ChannelClosedByBroker

from handlers.errors import ConfigError
from worker.dispatch import Message, Processor, Result
from worker.metrics import Metrics
from worker.policy import Ack, Park, Retry, RetryPolicy
from worker.settings import Settings
from worker.topology import Topology

ATTEMPTS_HEADER = "x-winback-attempts"
PRECONDITION_FAILED = 406


@dataclass(frozen=True)
class _Delivery:
    generation: int
    message: Message
    headers: dict[str, Any]


class Consumer:
    """Consumes the work queue until ``stop()``; reconnects when the broker goes away."""

    def __init__(
        self,
        settings: Settings,
        processor: Processor,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._topology = Topology.from_settings(settings)
        self._processor = processor
        self._policy = RetryPolicy(settings.retry_delays)
        self._metrics = metrics
        self._log = structlog.get_logger("winback.consumer")
        self._params = pika.URLParameters(settings.amqp_url.get_secret_value())
        self._params.heartbeat = settings.heartbeat
        self._params.blocked_connection_timeout = 300
        self._params.client_properties = {"connection_name": "winback-worker"}
        self._inbox: queue.Queue[_Delivery] = queue.Queue()
        self._stop = threading.Event()
        self._signalled: str | None = None  # assigned by a signal handler, read on the main thread
        self._draining = threading.Event()
        self._finished = threading.Event()
        self._generation = 0
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._in_flight = 0  # touched on the main thread only
        self._last_activity = time.monotonic()
        self.connections_opened = 0

    def is_consuming(self) -> bool:
        """True while a channel is open and taking deliveries (the readiness probe)."""
        return self._channel is not None and not self._draining.is_set()

    def stop(self) -> None:
        """Ask the consumer to stop, from any thread (not from a signal handler: see below)."""
        self._stop.set()

    def stop_on_signal(self, name: str) -> None:
        """Ask the consumer to stop, from a signal handler: only assigns an attribute (see
        ``worker.signals`` for why); the main loop notices within 0.2 s, logs and stops."""
        self._signalled = name

    def stopping(self) -> bool:
        """Main thread only: has a stop been asked for, by a thread or by a signal?"""
        if self._signalled is not None and not self._stop.is_set():
            self._log.info("stop_requested", signal=self._signalled)
            self._stop.set()
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Main thread only: wait ``seconds`` unless a stop is asked for; True if one was."""
        deadline = time.monotonic() + seconds
        while not self.stopping() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.stopping()

    def run(self, exit_when_idle: float | None = None) -> None:
        """Consume until stopped (or, with ``exit_when_idle``, until the queue has been empty and
        nothing in flight for that many seconds)."""
        worker = threading.Thread(target=self._work, name="winback-processing", daemon=True)
        worker.start()
        delay = 1.0
        try:
            while not self.stopping():
                try:
                    self._session(exit_when_idle)
                    delay = 1.0
                except AMQPError as exc:
                    self._metrics.broker_reconnects.inc()
                    self._log.warning("broker_lost", error=repr(exc), retry_in=delay)
                    self.pause(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            self._finished.set()
            worker.join(timeout=self._settings.grace_period)

    # --- main thread: AMQP ---------------------------------------------------------------------

    def _session(self, exit_when_idle: float | None) -> None:
        connection = pika.BlockingConnection(self._params)
        self.connections_opened += 1
        try:
            channel = connection.channel()
            self._declare(channel)
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=self._settings.prefetch)
            self._generation += 1
            self._in_flight = 0
            self._connection, self._channel = connection, channel
            tag = channel.basic_consume(
                self._settings.queue, functools.partial(self._on_message, self._generation)
            )
            self._metrics.connected.set(1)
            self._log.info("consuming", queue=self._settings.queue, prefetch=self._settings.prefetch)
            while not self.stopping():
                connection.process_data_events(time_limit=0.2)
                if exit_when_idle is not None and self._idle_for(channel, exit_when_idle):
                    self._log.info("queue_drained")
                    self._stop.set()
            self._drain(connection, channel, tag)
        finally:
            self._connection, self._channel = None, None
            self._metrics.connected.set(0)
            if connection.is_open:
                connection.close()

    def _declare(self, channel: BlockingChannel) -> None:
        try:
            self._topology.declare(channel)
        except ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED:
                raise
            # An existing queue or exchange with other arguments: retrying cannot fix it.
            raise ConfigError(
                f"the broker refused the topology: {exc.reply_text}. An exchange or queue of that "
                "name exists with other settings: restore them (WINBACK_DELIVERY_LIMIT, "
                "WINBACK_RETRY_DELAYS...) or delete it") from exc

    def _on_message(
        self, generation: int, channel: BlockingChannel, method: Any, props: Any, body: bytes
    ) -> None:
        headers = dict(props.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 0) or 0)
        message = Message(method.delivery_tag, method.routing_key, body, attempts)
        self._in_flight += 1
        self._last_activity = time.monotonic()
        self._inbox.put(_Delivery(generation, message, headers))

    def _idle_for(self, channel: BlockingChannel, seconds: float) -> bool:
        if self._in_flight or time.monotonic() - self._last_activity < seconds:
            return False
        ready = channel.queue_declare(self._settings.queue, passive=True).method.message_count
        retrying = sum(
            channel.queue_declare(self._topology.retry_queue(t), passive=True).method.message_count
            for t in range(len(self._topology.retry_delays))
        )
        return bool(ready + retrying == 0)

    def _drain(self, connection: BlockingConnection, channel: BlockingChannel, tag: str) -> None:
        """Stop taking deliveries, release the ones not started, let in-flight ones finish."""
        self._draining.set()
        channel.basic_cancel(tag)
        released = 0
        while True:
            try:
                delivery = self._inbox.get_nowait()
            except queue.Empty:
                break
            channel.basic_nack(delivery.message.tag, requeue=True)
            self._in_flight -= 1
            released += 1
        deadline = time.monotonic() + self._settings.grace_period
        while self._in_flight > 0 and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        self._log.info("stopped_consuming", released=released, unfinished=self._in_flight)

    def _settle(self, generation: int, deliveries: Sequence[_Delivery], results: Sequence[Result]) -> None:
        channel = self._channel
        if generation != self._generation or channel is None:
            return  # that connection is gone: the broker redelivers; the CRM ledger dedupes
        for delivery, result in zip(deliveries, results, strict=True):
            log = self._log.bind(**result.log)
            try:
                self._settle_one(channel, delivery, result, log)
            finally:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

    def _settle_one(self, channel: BlockingChannel, delivery: _Delivery, result: Result, log: Any) -> None:
        message = delivery.message
        for event in result.publishes:
            channel.basic_publish(
                self._settings.exchange, event.routing_key, json.dumps(event.payload).encode(),
                pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=event.message_id, type=event.routing_key),
            )
        disposition = result.disposition
        if isinstance(disposition, Retry):
            headers = delivery.headers | {ATTEMPTS_HEADER: message.attempts + 1,
                                          "x-winback-last-error": disposition.reason[:1000]}
            channel.basic_publish("", self._topology.retry_queue(disposition.tier), message.body,
                                  pika.BasicProperties(headers=headers, delivery_mode=2))
            log.warning("event_retry_scheduled", delay=disposition.delay, attempt=message.attempts + 1)
            self._metrics.events.labels(outcome="retried").inc()
        elif isinstance(disposition, Park):
            headers = delivery.headers | {
                "x-winback-error": disposition.error,
                "x-winback-reason": disposition.reason[:4000],
                "x-winback-routing-key": message.routing_key,
                "x-winback-parked-at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            channel.basic_publish("", self._settings.parking_queue, message.body,
                                  pika.BasicProperties(headers=headers, delivery_mode=2))
            log.error("event_parked", reason=disposition.reason)
            self._metrics.events.labels(outcome="parked").inc()
        elif isinstance(disposition, Ack):
            for suppression in result.suppressed:
                log.info("action_suppressed", action=suppression.action, key=suppression.key,
                         rule_id=suppression.rule_id, reason=suppression.reason)
                self._metrics.suppressed.labels(action=suppression.action).inc()
            log.info("event_handled")
            self._metrics.events.labels(outcome="handled").inc()
        channel.basic_ack(message.tag)

    # --- processing thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while not self._finished.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            generation = batch[0].generation
            started = time.monotonic()
            try:
                results = self._processor.process([d.message for d in batch])
            except Exception as exc:  # noqa: BLE001 - the processing thread must never die
                self._log.exception("batch_failed")
                results = [Result(self._policy.decide(exc, d.message.attempts)) for d in batch]
            self._metrics.batch_seconds.observe(time.monotonic() - started)
            self._post(generation, batch, results)

    def _take_batch(self) -> list[_Delivery]:
        """Up to ``batch_size`` deliveries of the current connection, waiting ``batch_wait_ms`` at
        most for the batch to fill. Deliveries of a lost connection are dropped: the broker has
        already put them back in the queue."""
        if self._draining.is_set():
            self._finished.wait(0.1)
            return []
        batch: list[_Delivery] = []
        deadline = time.monotonic() + self._settings.batch_wait_ms / 1000
        timeout = 0.2
        while len(batch) < self._settings.batch_size:
            try:
                delivery = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
            except queue.Empty:
                break
            if delivery.generation == self._generation:
                batch.append(delivery)
            timeout = deadline - time.monotonic()
        return batch

    def _post(self, generation: int, batch: list[_Delivery], results: list[Result]) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            connection.add_callback_threadsafe(functools.partial(self._settle, generation, batch, results))
        except AMQPError:
            self._log.warning("results_dropped_connection_closed", count=len(batch))

