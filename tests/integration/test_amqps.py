"""An ``amqps://`` broker with a private CA: verified against WINBACK_AMQP_CA_BUNDLE, refused without.

The broker here speaks plain AMQP, so a TLS-terminating relay in front of it (certificate from a
test CA made by trustme) stands in for a broker with TLS: the handshake is real, the AMQP is real.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import trustme

from handlers.errors import ConfigError
from tests.integration.broker import Names
from tests.integration.harness import make_settings
from worker.amqp import connection_parameters
from worker.publisher import publish_files
from worker.topology import Topology

SAMPLE = Path(__file__).parents[2] / "config" / "samples" / "one" / "lapsed.json"


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """(port, CA bundle path) of a TLS listener on localhost relaying to the broker on 5672."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # so the accept loop notices the stop
    stop = threading.Event()
    opened: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue  # a client that refused our certificate
            upstream = socket.create_connection(("127.0.0.1", 5672))
            opened.extend((client, upstream))
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], bundle
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
        for end in opened:
            end.close()


def test_an_amqps_broker_with_a_private_ca_is_verified_with_the_ca_bundle(
    names: Names, tmp_path: Path, tls_relay: tuple[int, Path]
) -> None:
    port, bundle = tls_relay
    url = f"amqps://guest:guest@localhost:{port}/%2F"
    settings = make_settings(names, tmp_path, amqp_url=url, amqp_ca_bundle=bundle)
    assert publish_files(settings, [SAMPLE]) == 1
    connection = pika.BlockingConnection(connection_parameters(settings))
    try:
        channel = connection.channel()
        ready = sum(channel.queue_declare(q, passive=True).method.message_count
                    for q in Topology.from_settings(settings).partition_queues)
    finally:
        connection.close()
    assert ready == 1


def test_without_the_ca_bundle_the_brokers_certificate_is_refused(
    names: Names, tmp_path: Path, tls_relay: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = tls_relay
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings = make_settings(names, tmp_path, amqp_url=f"amqps://guest:guest@localhost:{port}/%2F")
    with pytest.raises(ssl.SSLCertVerificationError):  # pika raises it as it is
        pika.BlockingConnection(connection_parameters(settings))


def test_an_unreadable_ca_bundle_stops_start_up_with_the_setting_named(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path, amqp_url="amqps://guest:guest@localhost:5671/%2F",
                             amqp_ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="WINBACK_AMQP_CA_BUNDLE: cannot read"):
        connection_parameters(settings)
