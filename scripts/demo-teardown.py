"""The demo's last step: delete its own queues and exchanges (named by the WINBACK_* settings it
set), so no timer it set is left waiting in the delay tiers; says how many were."""

from __future__ import annotations

import pika

from worker.amqp import connection_parameters
from worker.settings import load_settings
from worker.topology import Topology

settings = load_settings()
topology = Topology.from_settings(settings)
connection = pika.BlockingConnection(connection_parameters(settings, "winback-demo-teardown"))
try:
    held = topology.delete(connection.channel())
finally:
    connection.close()
timers = sum(held[q] for q in topology.timer_queues)
print(f"deleted the demo's {len(held)} queues ({settings.queue}.*) and its exchanges; "
      f"{timers} timer(s) still waiting in the delay tiers went with them")
