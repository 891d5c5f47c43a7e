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


def open_channel(address: str, ca_bundle: Path | None) -> grpc.Channel:
    roots = ca_bundle.read_bytes() if ca_bundle else None
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots))


def auth_metadata(token: Token, org_id: str) -> tuple[tuple[str, str], ...]:
    return (("accesstoken", token.access_token.get_secret_value()),
            ("instanceurl", token.instance_url), ("tenantid", org_id))


class Subscription:
    """One Subscribe call: ask for ``batch`` events, and for ``batch`` more each time they are owed none."""

    def __init__(self, stub: pb_grpc.PubSubStub, metadata: tuple[tuple[str, str], ...],
                 first: pb.FetchRequest, batch: int) -> None:
        self._requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self._requests.put(first)
        self._topic, self._batch = first.topic_name, batch
        self._call = stub.Subscribe(iter(self._requests.get, None), metadata=metadata)
        self._lock = threading.Lock()

    def responses(self) -> Iterator[pb.FetchResponse]:
        for response in self._call:
            yield response
            if response.pending_num_requested == 0:
                self._requests.put(pb.FetchRequest(topic_name=self._topic, num_requested=self._batch))

    def cancel(self) -> None:
        self._requests.put(None)
        self._call.cancel()
