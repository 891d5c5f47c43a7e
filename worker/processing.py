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

import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
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


class _Inbox:
    """A lane's deliveries in arrival order: put in a group at a time (what one turn of the I/O
    loop received), taken out a batch at a time. A queue per delivery took a lock and woke the
    lane for each one."""

    def __init__(self) -> None:
        self._waiting: deque[Delivery] = deque()
        self._changed = threading.Condition(threading.Lock())

    def put(self, deliveries: Sequence[Delivery]) -> None:
        with self._changed:
            self._waiting.extend(deliveries)
            self._changed.notify()

    def wait(self, count: int, timeout: float) -> int:
        """Wait up to ``timeout`` until ``count`` deliveries wait; returns how many do."""
        with self._changed:
            if timeout > 0:
                self._changed.wait_for(lambda: len(self._waiting) >= count, timeout)
            return len(self._waiting)

    def take(self, count: int) -> list[Delivery]:
        """The first ``count`` deliveries (fewer if fewer wait), oldest first."""
        with self._changed:
            waiting = self._waiting
            return [waiting.popleft() for _ in range(min(count, len(waiting)))]

    def take_all(self) -> list[Delivery]:
        with self._changed:
            taken = list(self._waiting)
            self._waiting.clear()
            return taken


class _Lane:
    """One thread, one inbox: the batches of the accounts that hash here, one after another."""

    def __init__(self, index: int, owner: ProcessingLanes) -> None:
        self.inbox = _Inbox()
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
        waiting = self.inbox.wait(1, 0.2)
        if not waiting:
            return []
        size, wait = batch_limits(waiting, owner.batching.size, owner.batching.wait)
        self.inbox.wait(size, wait)
        batch: list[Delivery] = []
        while len(batch) < size:  # deliveries of an earlier connection are dropped, not counted
            taken = self.inbox.take(size - len(batch))
            if not taken:
                break
            batch += [d for d in taken if d.generation == owner.generation]
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

    def submit(self, deliveries: Sequence[Delivery]) -> None:
        """Main thread: route by account, so an account's events never overtake each other;
        each lane gets its share of ``deliveries`` in one go, in their order."""
        lanes = len(self._lanes)
        if lanes == 1:
            self._lanes[0].inbox.put(deliveries)
            return
        shares: list[list[Delivery]] = [[] for _ in range(lanes)]
        for delivery in deliveries:
            shares[lane_of(delivery, lanes)].append(delivery)
        for lane, share in zip(self._lanes, shares, strict=True):
            if share:
                lane.inbox.put(share)

    def unstarted(self) -> list[Delivery]:
        """Take back every delivery no batch has started, so the session can release them."""
        return [d for lane in self._lanes for d in lane.inbox.take_all()]

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
