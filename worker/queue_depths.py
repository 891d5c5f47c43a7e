"""Samples the depth of the work, retry, parking and timer tier queues into a gauge, for alerts.

Its own connection and thread, so a slow broker answer never holds up consuming; a failed sample
is skipped (the gauge keeps its last value and ``winback_broker_connected`` tells the rest).
"""

from __future__ import annotations

import pika
from pika.exceptions import AMQPError

from worker.amqp import connection_parameters
from worker.metrics import Metrics
from worker.sampling import PeriodicSampler
from worker.settings import Settings
from worker.topology import Topology


class QueueDepths(PeriodicSampler):
    """Every ``interval`` seconds: ``winback_queue_messages{queue, role}`` for each queue."""

    skipped = (AMQPError, OSError)

    def __init__(self, settings: Settings, metrics: Metrics, interval: float = 15.0) -> None:
        topology = Topology.from_settings(settings)
        self._queues = [(q, "work") for q in topology.partition_queues]
        self._queues += [(settings.parking_queue, "parked")]
        self._queues += [(topology.retry_queue(t), "retry") for t in range(len(topology.retry_delays))]
        # Timers waiting, per delay tier (the queue's name says its delay).
        self._queues += [(name, "timer") for name in topology.timer_queues]
        self._settings = settings
        self._metrics = metrics
        super().__init__("winback-queue-depths", interval)

    def sample(self) -> None:
        """One sample of every queue (a queue not declared yet is left out)."""
        connection = pika.BlockingConnection(connection_parameters(self._settings, "winback-queue-depths"))
        try:
            for name, role in self._queues:
                channel = connection.channel()
                try:
                    count = channel.queue_declare(name, passive=True).method.message_count
                except AMQPError:
                    continue  # not declared yet: the channel is closed by the broker
                self._metrics.queue_messages.labels(queue=name, role=role).set(count)
                channel.close()
        finally:
            if connection.is_open:
                connection.close()
