"""The broker topology the worker declares (idempotently) before it consumes."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.events import CRM_EVENT_TYPES
from worker.crm.port import Outgoing
from worker.settings import Settings

# Timer delay tiers in ms: 0.25 s, then times 4 up to 4,194,304 s (48.5 days). A timer waits in the
# largest tier that does not overshoot its due time, then again in a smaller one, and so on: at
# most three hops per tier, and its last wait overshoots by under 0.25 s. One TTL per queue, so
# every message expires at the head (RabbitMQ 3.10 expires per-message TTLs only there).
TIMER_TIERS_MS: tuple[int, ...] = tuple(250 * 4**n for n in range(13))

# The header the partition exchange hashes on: every publisher sets it to the event's account.
# An event without it is still handled, in the one partition that all header-less events share.
ACCOUNT_HEADER = "x-winback-account"


def account_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The AMQP headers that send ``event`` (a CloudEvent dict) to its account's partition."""
    data = event.get("data")
    account = data.get("account_id") if isinstance(data, Mapping) else None
    return {ACCOUNT_HEADER: account} if isinstance(account, str) and account else {}


@dataclass(frozen=True)
class Topology:
    """Names and arguments of every exchange and queue, built from the settings.

    - ``exchange`` (topic): the CRM publishes events here, routing key = event type, header
      ``ACCOUNT_HEADER`` = the account.
    - ``hash_exchange`` (``x-consistent-hash`` on ``ACCOUNT_HEADER``): bound to ``exchange`` for
      the three event types, it routes each account to one of ``partitions`` work queues, always
      the same one while their number stays.
    - ``partition_queues`` (quorum, single active consumer): the work queues. However many
      replicas subscribe, the broker delivers each partition to one at a time, so an account's
      events are handled in publish order. Their dead-letter exchange catches messages the broker
      gives up on (``x-delivery-limit`` redeliveries: a message that kills workers), so a poison
      message ends in ``parking_queue`` instead of a crash loop.
    - ``retry_queues``: one per retry delay, each with a message TTL; on expiry a message is
      dead-lettered to ``hash_exchange``, which sends it back to its own partition by its header
      (not to the CRM exchange, which other systems may listen on).
    - ``parking_queue``: where the worker publishes messages it cannot handle, with the reason.
    - ``timer_queues``: the delay tiers timers wait in (``TIMER_TIERS_MS``), durable queues with a
      fixed TTL dead-lettering to ``hash_exchange`` like the retry queues.
    """

    exchange: str
    queue: str
    dead_letter_exchange: str
    parking_queue: str
    retry_delays: tuple[float, ...]
    delivery_limit: int
    partitions: int = 1
    routing_keys: tuple[str, ...] = CRM_EVENT_TYPES

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        return cls(
            exchange=settings.exchange,
            queue=settings.queue,
            dead_letter_exchange=settings.dead_letter_exchange,
            parking_queue=settings.parking_queue,
            retry_delays=settings.retry_delays,
            delivery_limit=settings.delivery_limit,
            partitions=settings.partitions,
        )

    @property
    def hash_exchange(self) -> str:
        return f"{self.queue}.hash"

    def partition_queue(self, index: int) -> str:
        return f"{self.queue}.p{index}"

    @property
    def presence_exchange(self) -> str:
        """Fanout on which the replicas announce themselves (``worker.partitions``)."""
        return f"{self.queue}.replicas"

    @property
    def partition_queues(self) -> tuple[str, ...]:
        return tuple(self.partition_queue(i) for i in range(self.partitions))

    def retry_queue(self, tier: int) -> str:
        return f"{self.queue}.retry.{int(self.retry_delays[tier] * 1000)}ms"

    def timer_queue(self, tier_ms: int) -> str:
        return f"{self.queue}.timer.{tier_ms}ms"

    @property
    def timer_queues(self) -> tuple[str, ...]:
        return tuple(self.timer_queue(ms) for ms in TIMER_TIERS_MS)

    def route(self, outgoing: Outgoing, now: datetime) -> tuple[str, str]:
        """(exchange, routing key) for an outgoing event: the CRM exchange, or for a timer the
        delay tier it waits in next, or its account's partition once it is due (published with
        ``account_headers``, as every event is)."""
        due = outgoing.due
        if due is None:
            return self.exchange, outgoing.routing_key
        wait_ms = (due - now).total_seconds() * 1000
        if wait_ms <= 0:
            return self.hash_exchange, outgoing.routing_key
        tier = max(bisect.bisect_right(TIMER_TIERS_MS, wait_ms) - 1, 0)
        return "", self.timer_queue(TIMER_TIERS_MS[tier])

    def delete(self, channel: Any) -> dict[str, int]:
        """Delete everything ``declare`` makes, messages included (a demo cleaning up after
        itself), and the single work queue of versions before the partitions; returns the
        messages each queue held (the timer tiers' say how many timers were still waiting)."""
        queues = [*self.partition_queues, self.queue, self.parking_queue, *self.timer_queues]
        queues += [self.retry_queue(t) for t in range(len(self.retry_delays))]
        held = {q: int(channel.queue_delete(q).method.message_count) for q in queues}
        for exchange in (self.exchange, self.hash_exchange, self.dead_letter_exchange,
                         self.presence_exchange):
            channel.exchange_delete(exchange)
        return held

    def declare(self, channel: Any) -> None:
        """Declare everything; safe to repeat, and fails loudly if an existing queue differs."""
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(
            self.parking_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(self.parking_queue, self.dead_letter_exchange)
        channel.exchange_declare(self.hash_exchange, exchange_type="x-consistent-hash",
                                 durable=True, arguments={"hash-header": ACCOUNT_HEADER})
        for partition in self.partition_queues:
            channel.queue_declare(
                partition,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-single-active-consumer": True,
                    "x-dead-letter-exchange": self.dead_letter_exchange,
                    "x-delivery-limit": self.delivery_limit,
                },
            )
            channel.queue_bind(partition, self.hash_exchange, routing_key="1")  # equal weights
        for key in self.routing_keys:
            channel.exchange_bind(self.hash_exchange, self.exchange, routing_key=key)
        for tier_ms in TIMER_TIERS_MS:
            channel.queue_declare(
                self.timer_queue(tier_ms),
                durable=True,
                # Classic, like the retry queues: thirteen quorum queues per worker topology cost
                # the broker file handles (a test suite of them exhausted a 1,024-handle broker).
                arguments={"x-message-ttl": tier_ms, "x-dead-letter-exchange": self.hash_exchange},
            )
        for tier, delay in enumerate(self.retry_delays):
            channel.queue_declare(
                self.retry_queue(tier),
                durable=True,
                arguments={"x-message-ttl": int(delay * 1000),
                           "x-dead-letter-exchange": self.hash_exchange},
            )
