"""How fast the bridge turns changes into confirmed CloudEvents, against the Pub/Sub test server.

Side by side in one run: the bridge (gRPC, Avro, mapping, a confirm per event and per stored replay
id) and plain confirmed publishes of the same number of events, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import pika

from tests.integration.broker import Names, channel, delete_all
from tests.pubsub.conftest import RunningBridge, bridge_settings
from tests.pubsub.server import PubSubServer
from tests.sfserver import SalesforceServer
from tests.waiting import wait_until


def _cases(org: SalesforceServer, count: int) -> None:
    # The test org is strict: the cases name accounts it holds.
    accounts = [org.org.seed("Account", Name=f"Bench {n}", OwnerId=org.org.user_id) for n in range(10)]
    for n in range(count):
        with org.org.transaction() as tx:
            org.org.create(tx, "Case", {"Subject": f"Late {n}", "Type": "Complaint",
                                        "Priority": "High", "Description": f"Late delivery {n}",
                                        "AccountId": accounts[n % len(accounts)]})


def bridge_rate(count: int, directory: Path, names: Names) -> float:
    with SalesforceServer(directory) as org, PubSubServer(org, directory) as pubsub, \
            RunningBridge(bridge_settings(org, pubsub, names)) as bridge:
        wait_until(lambda: pubsub.subscribes, what="the bridge to subscribe")
        started = time.perf_counter()
        _cases(org, count)
        wait_until(lambda: bridge.metrics.value("winback_bridge_events_published_total",
                                                type="crm.complaint.logged") >= count,
                   timeout=600, what="every change published")
        return count / (time.perf_counter() - started)


def plain_rate(count: int, names: Names) -> float:
    body = json.dumps({"specversion": "1.0", "id": "x", "type": "crm.complaint.logged"}).encode()
    with channel() as ch:
        ch.confirm_delivery()
        started = time.perf_counter()
        for _ in range(count):
            ch.basic_publish(names.settings["exchange"], "crm.complaint.logged", body,
                             pika.BasicProperties(delivery_mode=2), mandatory=True)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    names = Names(f"bench.bridge.{uuid.uuid4().hex[:8]}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bridge = bridge_rate(args.changes, Path(tmp), names)
        plain = plain_rate(args.changes, names)
    finally:
        delete_all(names, (0.2,))
        with channel() as ch:
            ch.queue_delete(f"{names.prefix}.replay.data.ChangeEvents")
    print(f"bridge: {args.changes} changes -> {bridge:8.0f} events/s published (confirmed)")
    print(f"plain confirmed publishes:        {plain:8.0f} events/s")
    print(f"bridge / plain: {bridge / plain:.2f}")


if __name__ == "__main__":
    main()
