"""The broker topology the worker declares (idempotently) before it consumes."""

from __future__ import annotations

import bisect
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


@dataclass(frozen=True)
class Topology:
    """Names and arguments of every exchange and queue, built from the settings.

    - ``exchange`` (topic): the CRM publishes events here, routing key = event type.
    - ``queue`` (quorum): the work queue, bound to the three event types. Its dead-letter exchange
      catches messages the broker gives up on (``x-delivery-limit`` redeliveries: a message that
      kills workers), so a poison message ends in ``parking_queue`` instead of a crash loop.
    - ``retry_queues``: one per retry delay, each with a message TTL; on expiry a message is
      dead-lettered through the default exchange straight back to the work queue (not to the CRM
      exchange, which other systems may listen on).
    - ``parking_queue``: where the worker publishes messages it cannot handle, with the reason.
    - ``timer_queues``: the delay tiers timers wait in (``TIMER_TIERS_MS``), durable queues with a
      fixed TTL dead-lettering through the default exchange back to the work queue.
    """

    exchange: str
    queue: str
    dead_letter_exchange: str
    parking_queue: str
    retry_delays: tuple[float, ...]
    delivery_limit: int
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
        )

    def retry_queue(self, tier: int) -> str:
        return f"{self.queue}.retry.{int(self.retry_delays[tier] * 1000)}ms"

    def timer_queue(self, tier_ms: int) -> str:
        return f"{self.queue}.timer.{tier_ms}ms"

    @property
    def timer_queues(self) -> tuple[str, ...]:
        return tuple(self.timer_queue(ms) for ms in TIMER_TIERS_MS)

    def route(self, outgoing: Outgoing, now: datetime) -> tuple[str, str]:
        """(exchange, routing key) for an outgoing event: the CRM exchange, or for a timer the
        delay tier it waits in next, or the work queue itself once it is due."""
        due = outgoing.due
        if due is None:
            return self.exchange, outgoing.routing_key
        wait_ms = (due - now).total_seconds() * 1000
        if wait_ms <= 0:
            return "", self.queue
        tier = max(bisect.bisect_right(TIMER_TIERS_MS, wait_ms) - 1, 0)
        return "", self.timer_queue(TIMER_TIERS_MS[tier])

    def declare(self, channel: Any) -> None:
        """Declare everything; safe to repeat, and fails loudly if an existing queue differs."""
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(
            self.parking_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(self.parking_queue, self.dead_letter_exchange)
        channel.queue_declare(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-delivery-limit": self.delivery_limit,
            },
        )
        for key in self.routing_keys:
            channel.queue_bind(self.queue, self.exchange, routing_key=key)
        for tier_ms in TIMER_TIERS_MS:
            channel.queue_declare(
                self.timer_queue(tier_ms),
                durable=True,
                # Classic, like the retry queues: thirteen quorum queues per worker topology cost
                # the broker file handles (a test suite of them exhausted a 1,024-handle broker).
                arguments={
                    "x-message-ttl": tier_ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                },
            )
        for tier, delay in enumerate(self.retry_delays):
            channel.queue_declare(
                self.retry_queue(tier),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                },
            )
