"""The bridge's loop: subscribe, decode, map, publish with confirms, store the replay id; reconnect.

Nothing lost: the replay id of a response is stored only after the broker confirmed every event
of it (and of all before it). Nothing doubled: a change replayed after a crash gets the same
CloudEvent id, which the worker's ledger has already seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import grpc
import structlog
from tenacity import RetryCallState, wait_exponential_jitter

from handlers.errors import (
    BrokerLostError,
    ConfigError,
    CrmAccessError,
    PermanentError,
    TransientError,
    WinbackError,
)
from handlers.sources.mapping import Change, UnmappableError, build, select, unmet
from handlers.sources.model import Source, fields_read
from worker.bridge.avro import SchemaCache
from worker.bridge.eventbus import pubsub_api_pb2 as pb
from worker.bridge.eventbus import pubsub_api_pb2_grpc as pb_grpc
from worker.bridge.health import Progress
from worker.bridge.metrics import BridgeMetrics
from worker.bridge.publisher import BridgePublisher
from worker.bridge.session import Subscription, auth_metadata
from worker.crm.salesforce_auth import Token

# The Pub/Sub API's error code (in the trailers) for a replay id it cannot resume from: corrupted,
# or older than the retention window. Salesforce's advice is to subscribe again from EARLIEST.
REPLAY_REFUSED = "replayid.corrupted"

Fetch = Callable[[str, str, Sequence[str]], Mapping[str, Any]]  # entity, id, fields -> record


@dataclass(frozen=True)
class BridgeConfig:
    topic: str
    org_id: str
    batch: int
    retention: timedelta
    max_backoff: float
    tick: float = 5.0  # seconds between turns while the service sends nothing
    call_timeout: float = 30.0  # GetTopic and GetSchema


class Bridge:
    """Runs one topic's subscription until ``stop`` is set."""

    def __init__(self, config: BridgeConfig, channel: grpc.Channel, token: Callable[[bool], Token],
                 sources: Sequence[Source], fetch: Fetch, publisher: BridgePublisher,
                 metrics: BridgeMetrics, stop: threading.Event) -> None:
        self.config, self.metrics, self._stop = config, metrics, stop
        self._stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
        self._token, self._sources, self._fetch, self._publisher = token, sources, fetch, publisher
        self._schemas = SchemaCache(self._get_schema)
        self._subscription: Subscription | None = None
        self._log = structlog.get_logger("winback.bridge").bind(topic=config.topic)
        self._renew = False
        self.progress = Progress(config.topic)
        self.error: WinbackError | None = None
        self._custom: bytes | None = None  # the replay id the current subscription resumed from
        self._refused: bytes | None = None  # a stored replay id the service refused

    def run(self) -> None:
        """Subscribe again and again with back-off; an error no retry can fix stops every topic."""
        wait = wait_exponential_jitter(multiplier=0.2, max=self.config.max_backoff)
        attempt = 0
        while not self._stop.is_set():
            try:
                self._subscribe()
                attempt = 0
            except grpc.RpcError as exc:
                attempt += 1
                self._renew = exc.code() == grpc.StatusCode.UNAUTHENTICATED
                if self._custom is not None and _replay_refused(exc):
                    self._refused = self._custom
                self._lost(exc.code().name.lower(), str(exc.details()))
            except (TransientError, CrmAccessError) as exc:
                attempt += 1
                self._lost("broker" if isinstance(exc, BrokerLostError) else "transient", str(exc))
            except WinbackError as exc:  # ConfigError and the like: a person has to fix it
                self._failed(exc)
                return
            finally:
                self.metrics.subscribed.labels(self.config.topic).set(0)
                self.progress.subscribed(False)
            if not self._stop.is_set() and attempt:
                self._stop.wait(wait(cast(RetryCallState, _Retry(attempt))))

    def _lost(self, reason: str, detail: str) -> None:
        if self._stop.is_set():
            return  # stopping cancels the stream: nothing was lost
        self.metrics.reconnects.labels(reason).inc()
        self.progress.lost(f"{reason}: {detail}")
        self._log.warning("subscription_lost", reason=reason, detail=detail)

    def _failed(self, exc: WinbackError) -> None:
        self.error = exc
        self.progress.failed(str(exc))
        self._log.error("bridge_failed", error=str(exc), action="fix it and restart the bridge")
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.cancel()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        token = self._token(self._renew)
        self._renew = False
        return auth_metadata(token, self.config.org_id)

    def _get_schema(self, schema_id: str) -> str:
        request = pb.SchemaRequest(schema_id=schema_id)
        try:
            info = self._stub.GetSchema(request, metadata=self._metadata(),
                                        timeout=self.config.call_timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
            # The session expired under a running subscription: log in again, keep the stream.
            self._log.info("salesforce_session_expired", action="relogin")
            self._renew = True
            info = self._stub.GetSchema(request, metadata=self._metadata(),
                                        timeout=self.config.call_timeout)
        return str(info.schema_json)

    def _first_request(self) -> pb.FetchRequest:
        self._custom = None
        topic, batch = self.config.topic, self.config.batch
        stored = self._publisher.position()
        if stored is None:
            # A first start: mark it before subscribing, so that a crash before the first replay id
            # is stored restarts from EARLIEST (replays meet the worker's ledger) instead of LATEST,
            # which would skip what changed in between.
            self._publisher.mark_started()
            self._log.info("subscription_started", replay="LATEST")
            return pb.FetchRequest(topic_name=topic, replay_preset=pb.LATEST, num_requested=batch)
        if not stored.replay_id:
            self._log.warning("subscription_started", replay="EARLIEST",
                              reason="stopped before storing a first replay id")
            return pb.FetchRequest(topic_name=topic, replay_preset=pb.EARLIEST, num_requested=batch)
        now = datetime.now(UTC)
        if stored.expired(now, self.config.retention):
            missed = (now - self.config.retention - stored.stored_at).total_seconds()
            self.metrics.replay_expired.inc()
            self.metrics.possibly_missed.set(missed)
            self._log.error("replay_id_expired", stored_at=stored.stored_at.isoformat(),
                            possibly_missed_seconds=round(missed), replay="EARLIEST",
                            hint="changes older than the retention window were not published")
            return pb.FetchRequest(topic_name=topic, replay_preset=pb.EARLIEST, num_requested=batch)
        if stored.replay_id == self._refused:
            self.metrics.replay_expired.inc()
            self._log.error("replay_id_refused", replay_id=stored.replay_id.hex(), replay="EARLIEST",
                            hint="the Pub/Sub API cannot resume from the stored replay id (corrupted, "
                                 "or past retention): replaying what it keeps; the ledger drops repeats")
            return pb.FetchRequest(topic_name=topic, replay_preset=pb.EARLIEST, num_requested=batch)
        self._custom = stored.replay_id
        self._log.info("subscription_started", replay="CUSTOM", replay_id=stored.replay_id.hex())
        return pb.FetchRequest(topic_name=topic, replay_preset=pb.CUSTOM,
                               replay_id=stored.replay_id, num_requested=batch)

    def _subscribe(self) -> None:
        topic = self._stub.GetTopic(pb.TopicRequest(topic_name=self.config.topic),
                                    metadata=self._metadata(), timeout=self.config.call_timeout)
        if not topic.can_subscribe:
            raise ConfigError(f"the integration user may not subscribe to {self.config.topic}")
        subscription = Subscription(self._stub, self._metadata(), self._first_request(),
                                    self.config.batch, self.config.tick)
        self._subscription = subscription
        try:
            for response in subscription.responses():
                # The first response, or a tick with no error: the service took the subscription.
                if not self.progress.read()[0]:
                    self.progress.subscribed(True)
                    self.metrics.subscribed.labels(self.config.topic).set(1)
                self.progress.turned()
                if response is None:
                    self._publisher.keep_alive()
                else:
                    self.handle(response)
                if self._stop.is_set():
                    break
        finally:
            subscription.cancel()  # a stream left open would keep taking events nobody reads

    def handle(self, response: pb.FetchResponse) -> None:
        """Publish what the events map to, then store the last replay id (or the latest, when idle)."""
        events: list[dict[str, Any]] = []
        newest = 0  # commit time (epoch ms) of the newest change in the response
        for consumer_event in response.events:
            self.metrics.received.labels(self.config.topic).inc()
            record = self._decoded(consumer_event.event)
            if record is None:
                continue
            newest = max(newest, int((record.get("ChangeEventHeader") or {}).get("commitTimestamp", 0)))
            events += self._mapped(record)
        # Idle and owed events: everything up to latest_replay_id has been seen, so keep the stored
        # position fresh (inside the retention window) without waiting for a change.
        idle = not response.events and response.pending_num_requested > 0
        last = response.events[-1].replay_id if response.events else (
            response.latest_replay_id if idle else b"")
        self._publisher.publish(events, bytes(last) if last else None)
        for event in events:
            self.metrics.published.labels(event["type"]).inc()
        if newest:
            self.metrics.replay_lag.labels(self.config.topic).set(max(time.time() - newest / 1000, 0))
        elif idle:
            self.metrics.replay_lag.labels(self.config.topic).set(0)

    def _decoded(self, event: pb.ProducerEvent) -> Mapping[str, Any] | None:
        try:
            return self._schemas.decode(event.schema_id, bytes(event.payload))
        except PermanentError as exc:
            self.metrics.unmapped.labels("(undecodable)").inc()
            self._log.error("change_unmapped", reason=str(exc), event_id=event.id)
            return None

    def _mapped(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for change in changes(record, self.config.topic):
            mapped = self._map_one(change)
            if mapped is not None:
                out.append(mapped)
        return out

    def _map_one(self, change: Change) -> dict[str, Any] | None:
        source = select(self._sources, change)
        if source is None:
            self.metrics.ignored.labels(change.entity).inc()
            return None
        try:
            record: Mapping[str, Any] = dict(change.fields)
            if source.fetch:
                record = {**record, **self._fetch(change.entity, change.record_id, fields_read(source))}
            why = unmet(source, record)
            if why is not None:
                self.metrics.ignored.labels(change.entity).inc()
                self._log.debug("change_ignored", source=source.id, reason=why)
                return None
            return build(source, record, change, f"salesforce/{self.config.org_id}{self.config.topic}")
        except (UnmappableError, PermanentError) as exc:
            self.metrics.unmapped.labels(source.id).inc()
            self._log.error("change_unmapped", source=source.id, record_id=change.record_id,
                            reason=str(exc))
            return None


class _Retry:
    """The bit of tenacity's RetryCallState its wait functions read."""

    def __init__(self, attempt: int) -> None:
        self.attempt_number = attempt


def _replay_refused(exc: grpc.RpcError) -> bool:
    trailers = getattr(exc, "trailing_metadata", lambda: None)() or ()
    return any(REPLAY_REFUSED in str(value) for _key, value in trailers)


def changes(record: Mapping[str, Any], topic: str) -> list[Change]:
    """One Change per record id: a change event may carry several records changed alike."""
    header = record.get("ChangeEventHeader") or {}
    fields = {k: v for k, v in record.items() if k != "ChangeEventHeader"}
    return [
        Change(entity=str(header.get("entityName", "")), change_type=str(header.get("changeType", "")),
               record_id=str(record_id), fields=fields, changed=list(header.get("changedFields", [])),
               commit_timestamp=int(header.get("commitTimestamp", 0)),
               sequence=int(header.get("sequenceNumber", 0)), topic=topic)
        for record_id in header.get("recordIds", [])
    ]
