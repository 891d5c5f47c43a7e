"""One simple-salesforce connection: timeouts, private CA, one re-login on expiry, API allowance.

Request bodies and replies go through orjson, the largest JSON the worker makes and reads (a
write's graphs, about 9 KB per event, and their answers); whatever orjson would treat otherwise
than the standard library goes through the standard library, as before (see ``json_text`` and
``_Salesforce``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import requests
import structlog
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from worker.crm.json_text import fast_json
from worker.crm.salesforce_auth import Credentials, Token
from worker.crm.salesforce_errors import CLIENT_ERRORS, SessionExpiredError, from_exception
from worker.crm.salesforce_limits import ApiAllowance

T = TypeVar("T")
JSON_HEADERS = {"Content-Type": "application/json"}  # simple-salesforce sends it too; said here
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_UTF8 = frozenset({"", "utf-8", "utf8"})  # a reply's declared encoding (lower case) orjson reads


class _Defaults(HTTPAdapter):
    """Gives every request the timeout, and the private CA bundle when one is configured.

    Set here rather than on the session: simple-salesforce's create/update take no timeout, and
    requests lets ``REQUESTS_CA_BUNDLE`` from the environment override ``Session.verify``.
    """

    def __init__(self, timeout: float, ca_bundle: Path | None, connections: int) -> None:
        super().__init__(pool_maxsize=connections)
        self._timeout = timeout
        self._ca_bundle = str(ca_bundle) if ca_bundle else None

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Any = None,
    ) -> requests.Response:
        return super().send(
            request, stream=stream, timeout=self._timeout if timeout is None else timeout,
            verify=self._ca_bundle or verify, cert=cert, proxies=proxies,
        )


def http_session(timeout: float, ca_bundle: Path | None, allowance: ApiAllowance,
                 connections: int = 10) -> requests.Session:
    """A requests session whose every call has a timeout and reports API usage to ``allowance``;
    it keeps up to ``connections`` open for reuse (more may be open at once, then closed)."""
    session = requests.Session()
    adapter = _Defaults(timeout, ca_bundle, connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.hooks["response"].append(allowance.on_response)
    return session


class SalesforceClient:
    """Calls Salesforce through simple-salesforce; raises only ``WinbackError``s.

    One attempt per call, plus one re-login and retry when the session expired in JWT mode:
    retrying transient failures is the adapter's single retry layer, not this one's.
    """

    def __init__(
        self, credentials: Credentials, http: requests.Session, api_version: str,
        allowance: ApiAllowance,
    ) -> None:
        self.api_version = api_version
        self.allowance = allowance
        self._credentials = credentials
        self._http = http
        self._sf: Salesforce | None = None
        self._first_login = threading.Lock()  # lanes start together: one of them logs in
        self._log = structlog.get_logger("winback.salesforce")

    @property
    def data_path(self) -> str:
        """The REST path prefix composite subrequests use: ``/services/data/vXX.X``."""
        return f"/services/data/v{self.api_version}"

    def connect(self) -> Salesforce:
        """Log in (JWT mode) or take the given token; cheap and local in token mode."""
        token = self._credentials.fetch(self._http)
        self._sf = _Salesforce(
            session_id=token.access_token.get_secret_value(), instance_url=token.instance_url,
            session=self._http, version=self.api_version,
            object_pairs_hook=None,  # replies as plain dicts: json's fast path, not OrderedDicts
        )
        self._log.info("salesforce_connected", instance_url=token.instance_url)
        return self._sf

    def fetch_token(self) -> Token:
        """A fresh token from the credentials (the Pub/Sub API takes it as a header)."""
        return self._credentials.fetch(self._http)

    def rest(self, method: str, path: str, body: Any = None, what: str = "") -> Any:
        """``method`` on ``/services/data/vXX.X/{path}`` with a JSON body; the decoded reply."""
        if body is None:
            return self.call(lambda sf: sf.restful(path, method=method), what or path)
        return self.call(lambda sf: sf.restful(path, method=method, data=_json_bytes(body),
                                               headers=JSON_HEADERS), what or path)

    def query_more(self, next_url: str, what: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            lambda sf: sf.query_more(next_url, identifier_is_url=True), what
        )
        return result

    def call(self, fn: Callable[[Salesforce], T], what: str) -> T:
        """Run one simple-salesforce call, converting its errors once, here."""
        sf = self._sf
        if sf is None:
            with self._first_login:
                sf = self._sf or self.connect()
        self.allowance.before_call()
        try:
            return _attempt(sf, fn, what)
        except SessionExpiredError as exc:
            if not self._credentials.renewable:
                raise SessionExpiredError(
                    "Salesforce session expired (INVALID_SESSION_ID) and a fixed access token "
                    "cannot be renewed: set a fresh WINBACK_SALESFORCE_ACCESS_TOKEN or use the "
                    "JWT bearer flow (WINBACK_SALESFORCE_CLIENT_ID/_USERNAME/_PRIVATE_KEY_FILE)"
                ) from exc
        self._log.info("salesforce_session_expired", action="relogin")
        return _attempt(self.connect(), fn, what)

    def close(self) -> None:
        self._http.close()


class _Salesforce(Salesforce):
    """simple-salesforce, its replies decoded by orjson; the call path (auth headers, session
    refresh, error conversion, API usage) is simple-salesforce's own, untouched.

    A reply orjson refuses (NaN, a lone surrogate, a byte order mark, not JSON at all) or one not
    declared UTF-8 is decoded by simple-salesforce as before, so it raises what it raised.
    orjson reads an integer beyond 64 bits as a float where the stdlib keeps an int: Salesforce
    never sends one (its numbers have at most 18 digits).
    """

    def parse_result_to_json(self, result: requests.Response) -> Any:
        if (result.encoding or "").lower() in _UTF8:
            try:
                return orjson.loads(result.content)
            except orjson.JSONDecodeError:
                pass
        return super().parse_result_to_json(result)


def _json_bytes(body: Any) -> bytes:
    """The request body as requests' ``json=`` would send it, compact, in UTF-8: a write's graphs
    are the largest text the worker makes, and encoding them shows in its CPU. orjson writes it
    where it writes what the stdlib writes (``fast_json``); the stdlib refuses what it refused."""
    fast = fast_json(body)
    if fast is not None:
        return fast
    try:
        return _ENCODER.encode(body).encode()
    except ValueError as exc:  # NaN or infinity: refused as requests refuses it, converted alike
        raise requests.exceptions.InvalidJSONError(exc) from exc


def _attempt(sf: Salesforce, fn: Callable[[Salesforce], T], what: str) -> T:
    try:
        return fn(sf)
    except SalesforceExpiredSession as exc:
        raise SessionExpiredError(f"Salesforce {what}: session expired") from exc
    except CLIENT_ERRORS as exc:
        raise from_exception(exc, what) from exc
