"""The parking queue as an operator works it: browse, replay to the exchange, purge.

Browsing takes messages with ``basic_get`` and does not acknowledge them, so every message stays
the broker's until one is explicitly settled: closing the channel (or the process dying) returns
all the others to the queue. A replay acknowledges a parked copy only after the broker confirmed
the re-published one, so a replay killed half-way leaves each message parked, re-queued, or both
(a duplicate the worker's ledger recognises), never neither.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from handlers.errors import PermanentError
from handlers.events import parse_event, peek_ids

# Headers the worker writes when it parks (worker.session) and the broker writes when it
# dead-letters a message that exceeded the delivery limit.
ERROR_HEADER = "x-winback-error"
REASON_HEADER = "x-winback-reason"
ROUTING_KEY_HEADER = "x-winback-routing-key"
PARKED_AT_HEADER = "x-winback-parked-at"
ATTEMPTS_HEADER = "x-winback-attempts"
REPLAYED_AT_HEADER = "x-winback-replayed-at"
REPLAYED_BY_HEADER = "x-winback-replayed-by"
# Dropped on replay: the replayed message starts afresh, with its full retry allowance.
PARKING_HEADERS = frozenset({
    ERROR_HEADER, REASON_HEADER, ROUTING_KEY_HEADER, PARKED_AT_HEADER, ATTEMPTS_HEADER,
    "x-winback-last-error", "x-death", "x-first-death-exchange", "x-first-death-queue",
    "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason",
    "x-delivery-count",
})
DELIVERY_LIMIT_ERROR = "DeliveryLimitExceeded"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


@dataclass(frozen=True)
class ParkedMessage:
    """One parked message as the operator sees it, plus what is needed to replay it."""

    tag: int
    body: bytes
    properties: pika.BasicProperties
    id: str
    type: str
    account: str
    reason: str
    error: str
    attempts: int
    parked_at: datetime | None
    routing_key: str

    @classmethod
    def read(cls, tag: int, props: pika.BasicProperties, body: bytes) -> ParkedMessage:
        headers: Mapping[str, Any] = props.headers or {}
        ids = peek_ids(body)
        death = _first_death(headers)
        keys = death.get("routing-keys") or []
        if ERROR_HEADER in headers:
            error, reason = _text(headers[ERROR_HEADER]), _text(headers.get(REASON_HEADER, ""))
        else:  # dead-lettered by the broker: it killed workers x-delivery-limit times
            error = DELIVERY_LIMIT_ERROR
            reason = f"dead-lettered by the broker ({_text(death.get('reason', 'unknown'))})"
        routing_key = _text(headers.get(ROUTING_KEY_HEADER) or (keys[0] if keys else "")
                            or ids.get("event_type", ""))
        return cls(
            tag=tag, body=body, properties=props,
            id=ids.get("event_id") or _text(props.message_id or f"tag-{tag}"),
            type=ids.get("event_type", ""), account=ids.get("account_id", ""),
            reason=reason, error=error, attempts=int(headers.get(ATTEMPTS_HEADER, 0) or 0),
            parked_at=_parked_at(headers, death), routing_key=routing_key,
        )

    def row(self) -> dict[str, Any]:
        """The listing's fields, JSON-ready."""
        return {"id": self.id, "type": self.type, "account": self.account, "reason": self.reason,
                "error": self.error, "attempts": self.attempts,
                "parked_at": self.parked_at.isoformat() if self.parked_at else None,
                "routing_key": self.routing_key}

    def problem(self) -> str | None:
        """Why this message cannot be replayed as it stands, or None."""
        try:
            parse_event(self.body)
        except PermanentError as exc:
            return f"still invalid: {exc}"
        if not self.routing_key:
            return "no routing key to replay it with"
        return None


def _parked_at(headers: Mapping[str, Any], death: Mapping[str, Any]) -> datetime | None:
    if PARKED_AT_HEADER in headers:
        try:
            return datetime.fromisoformat(_text(headers[PARKED_AT_HEADER]))
        except ValueError:
            return None
    when = death.get("time")
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class Selection:
    """Which parked messages a command acts on; every given criterion must hold."""

    ids: frozenset[str] = frozenset()
    reason: str | None = None  # substring of the reason or the error class, case-insensitive
    type: str | None = None
    account: str | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def matches(self, message: ParkedMessage) -> bool:
        if self.ids and message.id not in self.ids:
            return False
        if self.reason and self.reason.lower() not in f"{message.error} {message.reason}".lower():
            return False
        if self.type and self.type not in (message.type, message.type.removeprefix("crm.")):
            return False
        if self.account and message.account != self.account:
            return False
        return self._age_matches(message.parked_at)

    def _age_matches(self, parked_at: datetime | None) -> bool:
        if self.older_than is None and self.newer_than is None:
            return True
        if parked_at is None:
            return False
        age = self.now - parked_at
        if self.older_than is not None and age < self.older_than:
            return False
        return not (self.newer_than is not None and age > self.newer_than)


@dataclass(frozen=True)
class Refusal:
    """A selected message left parked, and why."""

    message: ParkedMessage
    why: str


def operator() -> str:
    """Who is replaying, for ``x-winback-replayed-by``: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class ParkingQueue:
    """Operations on the parking queue over one channel in confirm mode."""

    def __init__(self, channel: BlockingChannel, queue: str, exchange: str) -> None:
        self._channel = channel
        self._queue = queue
        self._exchange = exchange
        channel.confirm_delivery()

    def browse(self, selection: Selection, limit: int | None = None) -> Iterator[ParkedMessage]:
        """The selected messages, oldest first, held unacknowledged until settled or the channel
        closes. Messages not selected are held too (so each is seen once) and go back on close."""
        found = 0
        while limit is None or found < limit:
            method, props, body = self._channel.basic_get(self._queue, auto_ack=False)
            if method is None:
                return
            message = ParkedMessage.read(method.delivery_tag, props, body)
            if selection.matches(message):
                found += 1
                yield message

    def replay(self, messages: Sequence[ParkedMessage] | Iterator[ParkedMessage], by: str,
               dry_run: bool = False) -> Iterator[ParkedMessage | Refusal]:
        """Re-publish each valid message to the exchange with its original routing key; ack the
        parked copy only once the broker confirmed the new one. Yields each outcome as it happens."""
        for message in messages:
            why = message.problem()
            if why is not None:
                yield Refusal(message, why)
                continue
            if not dry_run:
                self._republish(message, by)
                self._channel.basic_ack(message.tag)
            yield message

    def purge(self, messages: Sequence[ParkedMessage]) -> int:
        for message in messages:
            self._channel.basic_ack(message.tag)
        return len(messages)

    def _republish(self, message: ParkedMessage, by: str) -> None:
        old = message.properties
        headers = {k: v for k, v in (old.headers or {}).items() if k not in PARKING_HEADERS}
        headers |= {REPLAYED_AT_HEADER: datetime.now(UTC).isoformat(timespec="seconds"),
                    REPLAYED_BY_HEADER: by, "x-winback-replayed-error": message.error}
        props = pika.BasicProperties(
            content_type=old.content_type, delivery_mode=2, message_id=old.message_id,
            type=old.type, headers=headers,
        )
        # Confirm mode: returns once the broker has it; raises if unroutable (mandatory) or nacked.
        self._channel.basic_publish(self._exchange, message.routing_key, message.body, props,
                                    mandatory=True)
