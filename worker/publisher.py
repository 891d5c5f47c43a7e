"""Publish event files to the CRM exchange with publisher confirms (``winback publish``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pika

from handlers.errors import InvalidEventError
from handlers.events import parse_event
from worker.amqp import connection_parameters
from worker.settings import Settings
from worker.topology import Topology, account_headers


def read_events(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Each file holds one event object or a list of them; each is validated before sending."""
    for path in files:
        loaded = json.loads(path.read_text())
        for event in loaded if isinstance(loaded, list) else [loaded]:
            try:
                parse_event(json.dumps(event))
            except InvalidEventError as exc:
                raise ValueError(f"{path}: {exc}") from exc
            yield event


def publish_files(settings: Settings, files: Iterable[Path]) -> int:
    events = list(read_events(files))
    connection = pika.BlockingConnection(connection_parameters(settings, "winback-publish"))
    try:
        channel = connection.channel()
        Topology.from_settings(settings).declare(channel)
        channel.confirm_delivery()  # each publish returns only once the broker has it
        for event in events:
            publish_event(channel, settings.exchange, event)
    finally:
        connection.close()
    return len(events)


def publish_event(channel: Any, exchange: str, event: dict[str, Any]) -> None:
    """Publish one CloudEvent the way the worker consumes it; every publisher of CRM events (this
    command, the Pub/Sub bridge) goes through here, so a change of routing reaches them all."""
    channel.basic_publish(
        exchange,
        event["type"],
        json.dumps(event).encode(),
        pika.BasicProperties(
            content_type="application/cloudevents+json", delivery_mode=2,
            message_id=event["id"], type=event["type"], headers=account_headers(event),
        ),
        mandatory=True,
    )
