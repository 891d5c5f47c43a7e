"""The partitions one session consumes, and how replicas share them out (main thread only).

Every replica subscribes to every partition; the broker makes one consumer per partition active.
Left alone, the first replica would stay active on all of them and the others would only stand
by, so replicas announce themselves: each publishes its id every ``every`` seconds on a fanout
exchange that each one hears through its own exclusive queue. A replica that knows ``R`` replicas
and is active (deliveries within the last ``window`` seconds) on more than its share,
``fair_share(P, R)``, hands one partition over at a time:

1. its acks on that partition are withheld, so the prefetch fills and nothing newer arrives;
2. once every delivery of the partition is settled, the subscription is cancelled (the broker
   activates a standing-by replica, which can only receive newer messages), the withheld acks
   are sent, and it subscribes again, at the back of the line.

Handing over that way keeps an account's order: nothing of the partition is in hand when another
replica starts on it.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pika.adapters.blocking_connection import BlockingChannel

from worker.settle import ack_all

OnMessage = Callable[[BlockingChannel, Any, Any, bytes], None]


def fair_share(partitions: int, replicas: int) -> int:
    """How many partitions one of ``replicas`` should be active on at most."""
    return math.ceil(partitions / max(replicas, 1))


def to_hand_over(active: Sequence[int], share: int) -> int | None:
    """The partition to hand over next (one at a time, the highest), or None when within share."""
    return max(active) if len(active) > share else None


@dataclass
class _Partition:
    queue: str
    tag: str | None = None
    last_delivery: float = -math.inf
    unsettled: int = 0
    handing_over: bool = False
    withheld: list[int] = field(default_factory=list)


class Partitions:
    """The subscriptions of one channel: which partition each delivery came from, its acks, the
    presence of the other replicas and the hand-overs."""

    def __init__(self, queues: Sequence[str], presence_exchange: str, every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._parts = [_Partition(q) for q in queues]
        self._exchange, self._every, self._clock = presence_exchange, every, clock
        self._window = 3 * every
        self.replica = uuid.uuid4().hex[:12]
        self._seen: dict[str, float] = {}
        self._of_tag: dict[str, int] = {}
        self._of_delivery: dict[int, int] = {}
        self._announced = -math.inf
        self._log = structlog.get_logger("winback.partitions")

    @property
    def subscribed(self) -> bool:
        return any(p.tag is not None for p in self._parts)

    def open(self, channel: BlockingChannel, on_message: OnMessage) -> None:
        """A new channel: subscribe to every partition, and hear the other replicas."""
        self._of_tag, self._of_delivery, self._seen = {}, {}, {}
        for part in self._parts:
            part.tag, part.unsettled, part.handing_over, part.withheld = None, 0, False, []
            part.last_delivery = -math.inf
        channel.exchange_declare(self._exchange, exchange_type="fanout", durable=True)
        presence = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(presence, self._exchange)
        channel.basic_consume(presence, self._heard, auto_ack=True)
        for index in range(len(self._parts)):
            self._subscribe(channel, index, on_message)
        self._announced = -math.inf

    def _subscribe(self, channel: BlockingChannel, index: int, on_message: OnMessage) -> None:
        part = self._parts[index]
        part.tag = channel.basic_consume(part.queue, on_message)
        self._of_tag[part.tag] = index

    def _heard(self, _channel: BlockingChannel, _method: Any, _props: Any, body: bytes) -> None:
        self._seen[body.decode(errors="replace")] = self._clock()

    def received(self, consumer_tag: str, delivery_tag: int) -> None:
        index = self._of_tag.get(consumer_tag)
        if index is None:
            return
        part = self._parts[index]
        part.unsettled += 1
        part.last_delivery = self._clock()
        self._of_delivery[delivery_tag] = index

    def ack(self, channel: BlockingChannel, delivery_tags: Sequence[int], stopping: bool) -> None:
        """Ack a batch's settled deliveries now (one flush for all), each but those withheld while
        their partition is handed over (or the worker stops)."""
        now: list[int] = []
        for delivery_tag in delivery_tags:
            index = self._of_delivery.get(delivery_tag)
            part = self._parts[index] if index is not None else None
            if stopping or (part is not None and part.handing_over):
                (part.withheld if part is not None else self._parts[0].withheld).append(delivery_tag)
            else:
                now.append(delivery_tag)
        ack_all(channel, now)

    def settled(self, delivery_tag: int) -> None:
        index = self._of_delivery.pop(delivery_tag, None)
        if index is not None:
            self._parts[index].unsettled -= 1

    def forget_unsettled(self) -> None:
        """Deliveries released without a settle (handed back to the broker)."""
        self._of_delivery.clear()
        for part in self._parts:
            part.unsettled = 0

    def tick(self, channel: BlockingChannel, on_message: OnMessage) -> None:
        """Each I/O-loop turn: announce this replica, finish hand-overs, maybe start one."""
        now = self._clock()
        for index, part in enumerate(self._parts):
            if part.handing_over and part.unsettled <= 0:
                self._complete(channel, index, on_message)
        if now - self._announced < self._every:
            return
        self._announced = now
        channel.basic_publish(self._exchange, "", self.replica.encode())
        replicas = sum(1 for at in self._seen.values() if now - at < self._window) or 1
        active = [i for i, p in enumerate(self._parts)
                  if now - p.last_delivery < self._window and not p.handing_over]
        chosen = to_hand_over(active, fair_share(len(self._parts), replicas))
        if chosen is not None and not any(p.handing_over for p in self._parts):
            self._parts[chosen].handing_over = True
            self._log.info("partition_handing_over", partition=self._parts[chosen].queue,
                           replicas=replicas, active=len(active))

    def _complete(self, channel: BlockingChannel, index: int, on_message: OnMessage) -> None:
        part = self._parts[index]
        if part.tag is not None:
            channel.basic_cancel(part.tag)
            self._of_tag.pop(part.tag, None)
        ack_all(channel, part.withheld)
        part.withheld, part.handing_over, part.last_delivery = [], False, -math.inf
        self._subscribe(channel, index, on_message)  # at the back of the line: standing by
        self._log.info("partition_handed_over", partition=part.queue)

    def cancel_all(self, channel: BlockingChannel) -> None:
        for part in self._parts:
            if part.tag is not None:
                channel.basic_cancel(part.tag)
                part.tag = None

    def ack_withheld(self, channel: BlockingChannel) -> int:
        count = 0
        for part in self._parts:
            ack_all(channel, part.withheld)
            count += len(part.withheld)
            part.withheld = []
        return count

