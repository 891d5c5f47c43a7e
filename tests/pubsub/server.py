"""The Pub/Sub API over real gRPC and TLS on loopback: Subscribe with flow control, GetSchema, GetTopic.

Every commit in the test org becomes a change event (Avro, with a real ChangeEventHeader and
bitmap-encoded changedFields) on ``/data/ChangeEvents`` and ``/data/<Entity>ChangeEvent``. Replay ids
are 8-byte positions; a ``CUSTOM`` replay id older than what is retained is refused as Salesforce
refuses it. Only tokens the test org issued, with its org id as tenant, are accepted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import date, datetime
from pathlib import Path
from typing import Any

import grpc
import trustme

from tests.pubsub.avro_schemas import change_schema, changed_bitmap, encode, schema_id
from tests.sfserver.org import Committed
from tests.sfserver.server import ORG_ID, SalesforceServer
from worker.bridge.eventbus import pubsub_api_pb2 as pb
from worker.bridge.eventbus import pubsub_api_pb2_grpc as pb_grpc

MAX_REQUESTED = 100
KEEPALIVE = 0.3  # seconds between empty responses when nothing happens (Salesforce: ~270 s)


def _avro_value(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind == ["null", "long"] and isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("+0000", "+00:00")).timestamp() * 1000)
    if kind == ["null", "int"] and isinstance(value, str):
        return (date.fromisoformat(value) - date(1970, 1, 1)).days
    if kind == ["null", "string"]:
        return str(value)
    return value


class PubSubServer:
    """Serves the org of ``salesforce``; use as a context manager."""

    def __init__(self, salesforce: SalesforceServer, directory: Path) -> None:
        self.salesforce = salesforce
        self.ca_file = directory / "pubsub-ca.pem"
        self.log: list[tuple[bytes, str, pb.ProducerEvent]] = []  # replay id, entity, event
        self.first_retained = 0  # index of the oldest event still kept
        self.schemas: dict[str, str] = {}
        self.subscribes = 0
        self.open_streams = 0  # Subscribe calls still running
        self.forbidden: set[str] = set()  # topics the integration user may not subscribe to
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        self._credentials = grpc.ssl_server_credentials(
            [(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())])
        self._server, self.port = self._listen(0)
        salesforce.org.after_commit.append(self.committed)

    def _listen(self, port: int) -> tuple[grpc.Server, int]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_PubSubServicer_to_server(_Servicer(self), server)
        bound = server.add_secure_port(f"127.0.0.1:{port}", self._credentials)
        if not bound:
            raise RuntimeError(f"cannot listen on 127.0.0.1:{port} again")
        return server, bound

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> PubSubServer:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.go_away()

    def go_away(self) -> None:
        """The service goes away: open streams end, new calls find nobody listening. Commits in
        the org are still kept, as the event bus keeps them while a subscriber is cut off."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._server.stop(grace=None).wait()

    def come_back(self) -> None:
        """A new server on the same address, serving the same event log."""
        self._stopping.clear()
        self._server, _ = self._listen(self.port)
        self._server.start()

    def committed(self, changes: list[Committed]) -> None:
        """One change event per record changed in the transaction, as CDC reports them."""
        key = str(uuid.uuid4())
        now = int(time.time() * 1000)
        for seq, (change_type, name, row, written) in enumerate(changes, start=1):
            schema = change_schema(self.salesforce.org.schema[name])
            sid = schema_id(schema)
            self.schemas[sid] = json.dumps(schema)
            shown = [f["name"] for f in schema["fields"][1:]
                     if change_type == "CREATE" or f["name"] in written]
            header = {"entityName": name, "recordIds": [row["Id"]], "changeType": change_type,
                      "changeOrigin": "com/salesforce/api/rest/62.0", "transactionKey": key,
                      "sequenceNumber": seq, "commitTimestamp": now, "commitNumber": now,
                      "commitUser": self.salesforce.org.user_id, "nulledFields": [],
                      "diffFields": [], "changedFields": changed_bitmap(schema, written)}
            record: dict[str, Any] = {"ChangeEventHeader": header}
            for f in schema["fields"][1:]:
                value = row.get(f["name"]) if f["name"] in shown else None
                record[f["name"]] = _avro_value(f["type"], value)
            self.append(name, pb.ProducerEvent(id=str(uuid.uuid4()), schema_id=sid,
                                               payload=encode(schema, record)))

    def append(self, entity: str, event: pb.ProducerEvent) -> None:
        with self._cond:
            replay = len(self.log).to_bytes(8, "big")
            self.log.append((replay, entity, event))
            self._cond.notify_all()

    def expire_all(self) -> None:
        """Retention passes: nothing published so far can be replayed."""
        with self._cond:
            self.first_retained = len(self.log)

    # -- what the servicer needs --------------------------------------------------------------

    def authorise(self, context: grpc.ServicerContext) -> None:
        headers = dict(context.invocation_metadata())
        if headers.get("tenantid") != ORG_ID or headers.get("accesstoken") not in self.salesforce.tokens:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Session is invalid or expired")

    def start(self, first: pb.FetchRequest, context: grpc.ServicerContext) -> int:
        with self._cond:
            if first.replay_preset == pb.EARLIEST:
                return self.first_retained
            if first.replay_preset == pb.LATEST:
                return len(self.log)
            position = int.from_bytes(first.replay_id, "big") + 1 if first.replay_id else -1
            if not self.first_retained <= position <= len(self.log):
                context.set_trailing_metadata((
                    ("error-code", "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"),))
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "The Replay ID validation failed. Ensure that the Replay ID is valid.")
            return position

    def wait_after(self, position: int) -> list[tuple[bytes, str, pb.ProducerEvent]]:
        with self._cond:
            if position >= len(self.log) and not self._stopping.is_set():
                self._cond.wait(KEEPALIVE)
            return self.log[position:]

    def replay_before(self, position: int) -> bytes:
        """The replay id of the last event a stream at ``position`` has passed."""
        with self._cond:
            return self.log[position - 1][0] if position > 0 else b""


def _in_topic(topic: str, entity: str) -> bool:
    return topic == "/data/ChangeEvents" or topic == f"/data/{entity}ChangeEvent"


class _Servicer(pb_grpc.PubSubServicer):
    def __init__(self, server: PubSubServer) -> None:
        self.s = server

    def GetTopic(self, request: pb.TopicRequest, context: grpc.ServicerContext) -> pb.TopicInfo:
        self.s.authorise(context)
        if not request.topic_name.startswith("/data/"):
            context.abort(grpc.StatusCode.NOT_FOUND, f"topic {request.topic_name} not found")
        allowed = request.topic_name not in self.s.forbidden
        return pb.TopicInfo(topic_name=request.topic_name, tenant_guid=ORG_ID, can_subscribe=allowed,
                            can_publish=False, rpc_id=str(uuid.uuid4()))

    def GetSchema(self, request: pb.SchemaRequest, context: grpc.ServicerContext) -> pb.SchemaInfo:
        self.s.authorise(context)
        if request.schema_id not in self.s.schemas:
            context.abort(grpc.StatusCode.NOT_FOUND, f"schema {request.schema_id} not found")
        return pb.SchemaInfo(schema_id=request.schema_id, schema_json=self.s.schemas[request.schema_id])

    def Subscribe(self, requests: Iterator[pb.FetchRequest],
                  context: grpc.ServicerContext) -> Iterator[pb.FetchResponse]:
        self.s.authorise(context)
        first = next(requests)
        topic = first.topic_name
        position = self.s.start(first, context)
        # Counted once its starting position is set: a test that waits for the subscription and
        # then changes a record must find the change on the stream, even from LATEST.
        with self.s._cond:
            self.s.subscribes += 1
        pending = [0]
        lock = threading.Lock()

        def ask(request: pb.FetchRequest) -> None:
            if not 0 < request.num_requested <= MAX_REQUESTED:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "num_requested must be 1..100")
            with lock:
                pending[0] += request.num_requested

        ask(first)
        def read() -> None:
            try:
                for request in requests:
                    ask(request)
            except (grpc.RpcError, ValueError, RuntimeError):  # the client went away or cancelled
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        with self.s._cond:
            self.s.open_streams += 1
        try:
            while context.is_active() and not self.s._stopping.is_set():
                if pending[0] == 0:  # owed nothing: wait for the client to ask for more
                    with self.s._cond:
                        self.s._cond.wait(KEEPALIVE)
                    continue
                new = self.s.wait_after(position)
                with lock:
                    take = new[:pending[0]]
                    batch = [(r, e) for r, entity, e in take if _in_topic(topic, entity)]
                    pending[0] -= len(batch)
                    position += len(take)
                    owed = pending[0]
                yield pb.FetchResponse(
                    events=[pb.ConsumerEvent(event=e, replay_id=r) for r, e in batch],
                    latest_replay_id=self.s.replay_before(position), pending_num_requested=owed,
                    rpc_id=str(uuid.uuid4()))
        finally:
            with self.s._cond:
                self.s.open_streams -= 1
