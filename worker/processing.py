"""The processing side of the consumer: lanes of accounts, each a thread running CRM batches.

The AMQP session (``worker.session``) puts deliveries in through ``submit``; each goes to the lane
its account hashes to, so one account's events always share a lane and keep their order, across
batches too, while the lanes run side by side: ``crm_concurrency`` batches in flight at once, the
CRM reads and writes of one lane overlapping the handler work of another. A lane takes up to
``batch_size`` deliveries (adaptive: ``batch_limits``), waiting ``batch_wait_ms`` at most for a
batch to fill, runs the processor and hands the results back through ``post``; the session
settles them on its own thread. No lane ever touches the connection.

Backpressure: the broker's prefetch (``Settings.in_flight_limit``) bounds what waits in the lanes;
a lane whose whole batch failed to be retried (the CRM is down or throttling) waits before its
next batch, doubling up to ``BACKOFF_MAX``, so an outage slows consumption instead of spinning
the backlog through the retry queues.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from handlers.events import peek_ids
from worker.dispatch import Message, Processor, Result
from worker.metrics import Metrics
from worker.policy import Retry
from worker.stop import StopToken
from worker.topology import ACCOUNT_HEADER

BACKOFF_FIRST = 0.5  # seconds a lane waits after a batch that failed as a whole; doubles
BACKOFF_MAX = 10.0


@dataclass(frozen=True)
class Delivery:
    """One message as received on connection number ``generation``, with its AMQP headers."""

    generation: int
    message: Message
    headers: dict[str, Any]


Post = Callable[[int, list[Delivery], list[Result]], None]


@dataclass(frozen=True)
class Batching:
    """How batches are taken: ``lanes`` in parallel, at most ``size`` deliveries each, waiting up
    to ``wait`` seconds for one to fill (less the emptier it is: ``batch_limits``)."""

    size: int
    wait: float
    lanes: int = 1


class _Lane:
    """One thread, one inbox: the batches of the accounts that hash here, one after another."""

    def __init__(self, index: int, owner: ProcessingLanes) -> None:
        self.inbox: queue.Queue[Delivery] = queue.Queue()
        self._owner = owner
        self.backoff = 0.0
        self.thread = threading.Thread(target=self._work, name=f"winback-lane-{index}", daemon=True)

    def _work(self) -> None:
        owner = self._owner
        while not owner.closed.is_set():
            batch = self._take_batch()
            if batch:
                self._run(batch)

    def _run(self, batch: list[Delivery]) -> None:
        owner = self._owner
        started = time.monotonic()
        messages = [d.message for d in batch]
        try:
            results = owner.processor.process(messages)
        except Exception as exc:  # a lane must never die
            owner.log.exception("batch_failed")
            results = owner.processor.fail_all(messages, exc)
        owner.metrics.batch_seconds.observe(time.monotonic() - started)
        owner.post(batch[0].generation, batch, results)
        if all(isinstance(r.disposition, Retry) for r in results):
            self.backoff = min(max(self.backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)
            owner.log.warning("lane_backing_off", seconds=self.backoff, batch=len(batch))
            owner.closed.wait(self.backoff)
        else:
            self.backoff = 0.0

    def _take_batch(self) -> list[Delivery]:
        owner = self._owner
        if owner.holding.is_set():  # a stop still handles what was received (the session)
            owner.closed.wait(0.1)
            return []
        batch: list[Delivery] = []
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return batch
        if first.generation == owner.generation:
            batch.append(first)
        size, wait = batch_limits(self.inbox.qsize() + 1, owner.batching.size, owner.batching.wait)
        deadline = time.monotonic() + wait
        while len(batch) < size:
            timeout = deadline - time.monotonic()
            try:
                delivery = self.inbox.get(timeout=timeout) if timeout > 0 else self.inbox.get_nowait()
            except queue.Empty:
                break
            if delivery.generation == owner.generation:
                batch.append(delivery)
        return batch


def lane_of(delivery: Delivery, lanes: int) -> int:
    """The lane of a delivery's account. The account header, which chose its partition, saves
    reading the whole body on the main thread (where every delivery passes); a message without
    one (published by hand) is peeked at. A header naming another account than the body already
    sent the message to that account's partition: its lane follows the partition."""
    account = delivery.headers.get(ACCOUNT_HEADER)
    if not isinstance(account, str) or not account:
        account = peek_ids(delivery.message.body).get("account_id", "")
    return zlib.crc32(account.encode()) % lanes


def batch_limits(waiting: int, size: int, wait: float) -> tuple[int, float]:
    """How many deliveries the next batch may take and how long it may wait for more, given how
    many wait in the lane (the first one included).

    Adaptive: a deep queue (a full batch waiting) gets full batches at once, with no wait; a quiet
    one (one delivery) gets it handled at once, so low load adds no latency; in between, the batch
    waits for more in proportion to how full it already is (a busy stream fills it soon, a
    trickle is not held up). What waits grows while a lane's batch is at the CRM, so under load
    batches grow by themselves towards ``size``.
    """
    if waiting >= size or waiting <= 1:
        return size, 0.0
    return size, wait * waiting / size
class ProcessingLanes:
    """Runs batches on ``batching.lanes`` threads until ``close``; stops taking new ones once the
    stop token is set (the session then releases what was not started and waits for the rest)."""

    def __init__(self, processor: Processor, batching: Batching, metrics: Metrics,
                 stop: StopToken) -> None:
        self.processor, self.batching, self.metrics, self.stop = processor, batching, metrics, stop
        self.closed = threading.Event()
        self.holding = threading.Event()  # no batch starts while set: the session hands back
        self.generation = 0
        self.post: Post = lambda generation, batch, results: None
        self.log = structlog.get_logger("winback.processing")
        self._lanes = [_Lane(i, self) for i in range(batching.lanes)]
        metrics.backoff.set_function(self.backoff)

    def start(self, post: Post) -> None:
        self.post = post
        for lane in self._lanes:
            lane.thread.start()

    def begin(self, generation: int) -> None:
        """A new connection: deliveries of earlier ones are dropped (the broker has them back)."""
        self.generation = generation
        self.holding.clear()

    def hold(self) -> None:
        """Start no more batches until the next ``begin``; the ones started run to the end."""
        self.holding.set()

    def submit(self, delivery: Delivery) -> None:
        """Main thread: route by account, so an account's events never overtake each other."""
        index = lane_of(delivery, len(self._lanes)) if len(self._lanes) > 1 else 0
        self._lanes[index].inbox.put(delivery)

    def unstarted(self) -> list[Delivery]:
        """Take back every delivery no batch has started, so the session can release them."""
        taken: list[Delivery] = []
        for lane in self._lanes:
            while True:
                try:
                    taken.append(lane.inbox.get_nowait())
                except queue.Empty:
                    break
        return taken

    def close(self, timeout: float) -> None:
        """Let each lane finish the batch in hand (within ``timeout`` overall) and end."""
        self.closed.set()
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            if lane.thread.ident is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))

    def backoff(self) -> float:
        """Seconds the most backed-off lane waits after its last batch (0: none backs off)."""
        return max(lane.backoff for lane in self._lanes)

    def alive(self) -> bool:
        """Every lane thread is running (for health checks)."""
        return all(lane.thread.is_alive() for lane in self._lanes)
