"""A Salesforce-compatible HTTPS server on 127.0.0.1 for tests: OAuth JWT bearer, REST, faults."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.sfserver import cast
from tests.sfserver.faults import Faults
from tests.sfserver.org import Org
from tests.sfserver.rest import Rest
from tests.sfserver.schema import METADATA, load_schema

USER_ID = "0050000000WORKRAAA"  # the integration user: a real 18-character id, as in any org
ORG_ID = "00DTEST0000000001AAA"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class ConnectedApp:
    """The app the integration user pre-authorised: consumer key, user, and the signing key."""

    client_id: str
    username: str
    key_file: Path
    public_key: Any

    @classmethod
    def create(cls, directory: Path) -> ConnectedApp:
        key = _signing_key()
        path = directory / "jwt-key.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return cls("3MVG9TEST.consumer.key", "winback@example.com.test", path, key.public_key())


@cache
def _signing_key() -> rsa.RSAPrivateKey:
    # One 2048-bit key per test session: generating it is the slowest part of starting a server.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Http(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: nothing outlives a test
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is a fault the tests cause on purpose.
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handle_error(request, client_address)


class SalesforceServer:
    """Serve a fresh org over HTTPS; use as a context manager so it always closes.

    ``calls`` lists every request; ``api_calls`` counts those Salesforce charges against the
    daily allowance (everything under ``/services/data``; logins are free).
    """

    def __init__(self, directory: Path, *, api_version: str = "62.0", api_used: int = 0,
                 api_total: int = 100_000, page_size: int = 2000, strict_ids: bool = True,
                 metadata: Path = METADATA, hidden: frozenset[str] = frozenset(),
                 missing: frozenset[str] = frozenset(), read_only: frozenset[str] = frozenset(),
                 seed: Callable[[Org], None] | None = cast.seed) -> None:
        self.app = ConnectedApp.create(directory)
        self.ca_file = directory / "test-ca.pem"
        schema = load_schema(metadata, hidden=hidden, missing=missing, read_only=read_only)
        self.org = Org(schema, USER_ID, strict_ids)
        self.org.seed("User", Id=USER_ID, Username=self.app.username, Name="Win-back Worker",
                      IsActive=True)
        if seed is not None:  # the records an org has before the worker comes: users, accounts...
            seed(self.org)
        self.rest = Rest(self.org, api_version, page_size)
        self.api_version = api_version
        self.api_used, self.api_total = api_used, api_total
        self.calls: list[Call] = []
        self.answered_seconds = 0.0  # of the answered calls, arrival to answer, all together
        self._arrivals: dict[int, float] = {}  # call index -> arrival, until it is answered
        self.tokens: set[str] = set()
        self._stop = threading.Event()
        self.faults = Faults(self._stop)
        self.org.before_write.append(self.faults.check_record)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._http = self._listen()
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,),
                                        name="sfserver")

    def _listen(self) -> _Http:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        http = _Http(("127.0.0.1", 0), _Handler)
        http.salesforce = self  # type: ignore[attr-defined]
        http.tls = context  # type: ignore[attr-defined]
        return http

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._http.server_address[1]}"

    @property
    def api_calls(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.path.startswith("/services/data/"))

    def __enter__(self) -> SalesforceServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._http.shutdown()
        with self._lock:
            for sock in self._open:  # idle keep-alive connections: wake their threads
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._http.server_close()
        self._thread.join()

    def issue_token(self) -> str:
        token = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
        with self._lock:
            self.tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        """Every access token issued so far stops working (answers 401 INVALID_SESSION_ID)."""
        with self._lock:
            self.tokens.clear()

    def records(self, sobject: str) -> list[dict[str, Any]]:
        return self.org.rows(sobject)

    def record_call(self, method: str, path: str) -> int:
        """Count a request as it arrives (a held one counts too); its status comes later."""
        with self._lock:
            self.calls.append(Call(method, path, 0))
            self._arrivals[len(self.calls) - 1] = time.monotonic()
            if path.startswith("/services/data/"):
                self.api_used += 1
            return len(self.calls) - 1

    def answered(self, index: int, status: int) -> None:
        with self._lock:
            call = self.calls[index]
            self.calls[index] = Call(call.method, call.path, status)
            self.answered_seconds += time.monotonic() - self._arrivals.pop(index)

    @property
    def unanswered(self) -> int:
        """Requests arrived and not answered yet (a dropped connection's stays counted)."""
        return len(self._arrivals)

    def limit_info(self) -> str:
        with self._lock:
            return f"api-usage={self.api_used}/{self.api_total}"

    def track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._open.add if open_ else self._open.discard)(sock)

    def authorised(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ").strip()
        with self._lock:
            return token in self.tokens

    def login(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The OAuth 2.0 JWT bearer token endpoint, with Salesforce's error shapes."""
        if form.get("grant_type") != JWT_GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        try:
            claims = jwt.decode(form.get("assertion", ""), self.app.public_key, algorithms=["RS256"],
                                audience=self.url, options={"require": ["exp", "iss", "sub", "aud"]})
        except jwt.InvalidAudienceError:
            return 400, {"error": "invalid_grant", "error_description": "audience is invalid"}
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
        if claims["iss"] != self.app.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if claims["sub"] != self.app.username:
            return 400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
        return 200, {"access_token": self.issue_token(), "instance_url": self.url,
                     "id": f"{self.url}/id/{ORG_ID}/{USER_ID}", "token_type": "Bearer",
                     "scope": "api", "issued_at": "0", "signature": "test"}


def _loads(raw: bytes) -> Any:
    """orjson for speed; the standard library wherever orjson refuses what it reads (a lone
    surrogate's escape, an integer over 64 bits), so the org reads exactly what it read before."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # a lone surrogate, a key that is not text: written as before
        return json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection gives up eventually

    @property
    def sf(self) -> SalesforceServer:
        return self.server.salesforce  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        tls: ssl.SSLContext = self.server.tls  # type: ignore[attr-defined]
        self.request = tls.wrap_socket(self.request, server_side=True, do_handshake_on_connect=False)
        self.sf.track(self.request, True)
        self.handshake_failed = False
        try:
            self.request.do_handshake()
        except OSError:  # a client that does not trust the test CA: nothing to serve
            self.handshake_failed = True
        super().setup()

    def handle(self) -> None:
        if not self.handshake_failed:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.sf.track(self.request, False)
            self.request.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        call = self.sf.record_call(method, path)
        reply = self.sf.faults.reply_for(path)
        if reply is not None and reply.body is None:
            self.close_connection = True
            return
        self.sf.faults.wait(path, after=False)
        status, body = (reply.status, reply.body) if reply else self._process(method, path, raw)
        self.sf.answered(call, status)
        self.sf.faults.wait(path, after=True)
        self._send(status, body)

    def _process(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if path == "/services/oauth2/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            return self.sf.login(form)
        if not self.sf.authorised(self.headers.get("Authorization")):
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if raw and media != "application/json":  # Salesforce takes XML too; no client sends it here
            return 415, [{"message": "Content-Type header specified in HTTP request is not "
                          f"supported: {media}", "errorCode": "UNSUPPORTED_MEDIA_TYPE"}]
        try:
            body = _loads(raw) if raw else None
        except ValueError:
            return 400, [{"message": "Unexpected character", "errorCode": "JSON_PARSER_ERROR"}]
        return self.sf.rest.handle(method, self.path, body)

    def _send(self, status: int, body: Any) -> None:
        data = b"" if body is None else _dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if self.path.startswith("/services/data/"):  # the REST API reports usage; logins do not
            self.send_header("Sforce-Limit-Info", self.sf.limit_info())
        self.end_headers()
        self.wfile.write(data)
