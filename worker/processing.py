"""The processing side of the consumer: its own thread takes deliveries in batches and runs them.

The AMQP session (``worker.session``) puts deliveries in through ``submit``; this thread takes up
to ``batch_size`` of them, waiting ``batch_wait_ms`` at most for a batch to fill, runs the
processor (CRM reads, pure handlers, CRM writes) and hands the results back through ``post``,
which the session turns into a settle on its own thread. It never touches the connection.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from worker.dispatch import Message, Processor, Result
from worker.metrics import Metrics
from worker.stop import StopToken


@dataclass(frozen=True)
class Delivery:
    """One message as received on connection number ``generation``, with its AMQP headers."""

    generation: int
    message: Message
    headers: dict[str, Any]


Post = Callable[[int, list[Delivery], list[Result]], None]


@dataclass(frozen=True)
class Batching:
    """How batches are taken: at most ``size`` deliveries, waiting ``wait`` seconds to fill."""

    size: int
    wait: float


class ProcessingThread:
    """Runs batches on its own thread until ``close``; stops taking new ones once ``stop`` is set
    (the session then releases what was not started and waits for what was)."""

    def __init__(self, processor: Processor, batching: Batching, metrics: Metrics,
                 stop: StopToken) -> None:
        self._processor = processor
        self._batching = batching
        self._metrics = metrics
        self._stop = stop
        self._inbox: queue.Queue[Delivery] = queue.Queue()
        self._closed = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._log = structlog.get_logger("winback.processing")

    def start(self, post: Post) -> None:
        self._thread = threading.Thread(target=self._work, args=(post,), name="winback-processing",
                                        daemon=True)
        self._thread.start()

    def begin(self, generation: int) -> None:
        """A new connection: deliveries of earlier ones are dropped (the broker has them back)."""
        self._generation = generation

    def submit(self, delivery: Delivery) -> None:
        self._inbox.put(delivery)

    def unstarted(self) -> list[Delivery]:
        """Take back every delivery no batch has started, so the session can release them."""
        taken: list[Delivery] = []
        while True:
            try:
                taken.append(self._inbox.get_nowait())
            except queue.Empty:
                return taken

    def close(self, timeout: float) -> None:
        """Finish the batch in hand (up to ``timeout``) and end the thread."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _work(self, post: Post) -> None:
        while not self._closed.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            started = time.monotonic()
            messages = [d.message for d in batch]
            try:
                results = self._processor.process(messages)
            except Exception as exc:  # noqa: BLE001 - the processing thread must never die
                self._log.exception("batch_failed")
                results = self._processor.fail_all(messages, exc)
            self._metrics.batch_seconds.observe(time.monotonic() - started)
            post(batch[0].generation, batch, results)

    def _take_batch(self) -> list[Delivery]:
        if self._stop.is_set():
            self._closed.wait(0.1)
            return []
        batch: list[Delivery] = []
        deadline = time.monotonic() + self._batching.wait
        timeout = 0.2
        while len(batch) < self._batching.size:
            try:
                delivery = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
            except queue.Empty:
                break
            if delivery.generation == self._generation:
                batch.append(delivery)
            timeout = deadline - time.monotonic()
        return batch
