"""The broker topology the worker declares (idempotently) before it consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.events import EVENT_TYPES
from worker.settings import Settings


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
    """

    exchange: str
    queue: str
    dead_letter_exchange: str
    parking_queue: str
    retry_delays: tuple[float, ...]
    delivery_limit: int
    routing_keys: tuple[str, ...] = EVENT_TYPES

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
