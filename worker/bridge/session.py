"""Talking to the Pub/Sub API: the TLS channel, the auth headers, the flow-controlled Subscribe stream."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc

from worker.bridge.eventbus import pubsub_api_pb2 as pb
from worker.bridge.eventbus import pubsub_api_pb2_grpc as pb_grpc
from worker.crm.salesforce_auth import Token


def open_channel(address: str, ca_bundle: Path | None, max_backoff: float) -> grpc.Channel:
    roots = ca_bundle.read_bytes() if ca_bundle else None
    # gRPC's own reconnect back-off grows to 120 s by default: keep it within the bridge's, so a
    # service that comes back is reached as soon as the bridge asks again.
    options = [("grpc.initial_reconnect_backoff_ms", 200),
               ("grpc.max_reconnect_backoff_ms", int(max_backoff * 1000))]
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots),
                               options=options)


def auth_metadata(token: Token, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("accesstoken", token.access_token.get_secret_value()),
            ("instanceurl", token.instance_url), ("tenantid", org_id))


class Subscription:
    """One Subscribe call: ask for ``batch`` events, and for ``batch`` more each time they are owed none.

    A reader thread takes the responses off the stream, so the bridge gets a turn every ``tick``
    seconds even while the service sends nothing (Salesforce's keep-alives come only every few
    minutes): the turn is when it tends its broker connection.
    """

    def __init__(self, stub: pb_grpc.PubSubStub, metadata: tuple[tuple[str, str], ...],
                 first: pb.FetchRequest, batch: int, tick: float) -> None:
        self._requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self._requests.put(first)
        self._topic, self._batch, self._tick = first.topic_name, batch, tick
        self._call = stub.Subscribe(iter(self._requests.get, None), metadata=metadata)
        self._responses: queue.Queue[pb.FetchResponse | grpc.RpcError | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"pubsub-{self._topic}", daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._responses.put(response)
        except grpc.RpcError as exc:  # the call failed or was cancelled: the bridge decides
            self._responses.put(exc)
        else:
            self._responses.put(None)

    def responses(self) -> Iterator[pb.FetchResponse | None]:
        """Each response in order, and ``None`` for each ``tick`` without one; raises what ended
        the stream (``grpc.RpcError``), or returns when the service closed it."""
        while True:
            try:
                item = self._responses.get(timeout=self._tick)
            except queue.Empty:
                yield None
                continue
            if item is None:
                return
            if isinstance(item, grpc.RpcError):
                raise item
            yield item
            if item.pending_num_requested == 0:
                self._requests.put(pb.FetchRequest(topic_name=self._topic, num_requested=self._batch))

    def cancel(self) -> None:
        self._requests.put(None)
        self._call.cancel()
