"""A real RabbitMQ for integration tests: unique names per test, publishing and peeking helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pytest

from worker.settings import Settings
from worker.topology import TIMER_TIERS_MS, account_headers

TEST_PARTITIONS = 2  # partition queues per test topology: each is a quorum queue (broker handles)

AMQP_URL = os.environ.get("WINBACK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def require_broker() -> None:
    """Fail in CI, skip locally, when no broker answers (dramatiq's way)."""
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except pika.exceptions.AMQPError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RabbitMQ not reachable at {AMQP_URL}: {exc}")


@dataclass(frozen=True)
class Names:
    """Unique exchange and queue names for one test, as WINBACK_* setting overrides."""

    prefix: str

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "amqp_url": AMQP_URL,
            "exchange": f"{self.prefix}.events",
            "queue": f"{self.prefix}.work",
            "parking_queue": f"{self.prefix}.parked",
            "dead_letter_exchange": f"{self.prefix}.dlx",
            "partitions": TEST_PARTITIONS,
        }


@contextmanager
def channel() -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def delete_all(names: Names, retry_delays: tuple[float, ...]) -> None:
    s = names.settings
    with channel() as ch:
        queues = [f"{s['queue']}.p{i}" for i in range(s["partitions"])] + [s["parking_queue"]]
        queues += [f"{s['queue']}.retry.{int(d * 1000)}ms" for d in retry_delays]
        queues += [f"{s['queue']}.timer.{ms}ms" for ms in TIMER_TIERS_MS]
        for q in queues:
            ch.queue_delete(q)
        ch.exchange_delete(s["exchange"])
        ch.exchange_delete(f"{s['queue']}.hash")
        ch.exchange_delete(f"{s['queue']}.replicas")
        ch.exchange_delete(s["dead_letter_exchange"])


def publish(names: Names, body: bytes | dict[str, Any], routing_key: str | None = None) -> None:
    """Publish one event as the CRM does: routing key = type, the account in its header."""
    headers: dict[str, Any] = {}
    if isinstance(body, dict):
        routing_key = routing_key or body["type"]
        headers = account_headers(body)
        body = json.dumps(body).encode()
    with channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish(names.settings["exchange"], routing_key or "crm.customer.lapsed", body,
                         pika.BasicProperties(delivery_mode=2, headers=headers), mandatory=True)


def publish_many(names: Names, events: list[dict[str, Any]]) -> None:
    """Publish ``events`` in quick succession on one channel, as a CRM sends a burst."""
    with channel() as ch:
        ch.confirm_delivery()
        for event in events:
            ch.basic_publish(names.settings["exchange"], event["type"], json.dumps(event).encode(),
                             pika.BasicProperties(delivery_mode=2, headers=account_headers(event)),
                             mandatory=True)


def message_count(queue: str) -> int:
    with channel() as ch:
        return int(ch.queue_declare(queue, passive=True).method.message_count)


def work_count(settings: Settings) -> int:
    """Messages ready in all the partition queues of ``settings``."""
    return sum(message_count(f"{settings.queue}.p{i}") for i in range(settings.partitions))


def take_all_work(settings: Settings) -> list[tuple[str, dict[str, Any], bytes]]:
    """Every message in the partition queues (routing key, headers, body), acknowledged."""
    return [m for i in range(settings.partitions) for m in take_all_routed(f"{settings.queue}.p{i}")]


def take_all(queue: str) -> list[tuple[dict[str, Any], bytes]]:
    """Every message in ``queue`` (headers, body), acknowledged."""
    return [(headers, body) for _, headers, body in take_all_routed(queue)]


def take_all_routed(queue: str) -> list[tuple[str, dict[str, Any], bytes]]:
    """Every message in ``queue`` (routing key, headers, body), acknowledged."""
    out = []
    with channel() as ch:  # consume, not basic.get: a single-active-consumer queue refuses that
        if not ch.queue_declare(queue, passive=True).method.message_count:
            return out
        for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if method is None:
                break
            out.append((method.routing_key, dict(props.headers or {}), body))
        ch.cancel()
    return out


_PREFIXES: set[str] = set()  # every prefix this test run handed out, for the sweep at the end


def new_names() -> Names:
    names = Names(f"test.{uuid.uuid4().hex[:10]}")
    _PREFIXES.add(names.prefix)
    return names


def sweep_leftovers(prefixes: set[str] | None = None) -> int:
    """Delete the queues this run's tests left on the shared broker; returns how many.

    A teardown deletes the retry queues of the delays it is told about, but a worker under test
    may declare others (its default delays, a test's own): without this they pile up run after
    run on a broker that CI shares with every later run. One `rabbitmqctl list_queues` call.
    """
    prefixes = _PREFIXES if prefixes is None else prefixes
    if not prefixes or shutil.which("rabbitmqctl") is None:
        return 0
    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name"],
                            capture_output=True, text=True, timeout=60, check=False)
    leftovers = [q for q in listed.stdout.split() if ".".join(q.split(".")[:2]) in prefixes]
    with channel() as ch:
        for queue in leftovers:
            ch.queue_delete(queue)
    return len(leftovers)
