"""Salesforce failures classified by ``errorCode`` (never by exception class) into the error tree.

simple-salesforce maps HTTP status to an exception class only (a row lock is a 400 there, like a
bad field), so the decision is made here from the JSON body: retry, slow down, pause, or park.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from handlers.errors import (
    CrmAccessError,
    CrmRejectedError,
    CrmUnavailableError,
    RateLimitedError,
    WinbackError,
)

# Codes that mean "come back later": the same request may succeed on a retry.
TRANSIENT_CODES: frozenset[str] = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG",
    "CONCURRENT_REQUEST_LIMIT_EXCEEDED", "SERVICE_UNAVAILABLE",
})
RATE_CODES: frozenset[str] = frozenset({"REQUEST_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"})
# Listed for the docs and tests; every other code is permanent too (retrying cannot fix the data).
PERMANENT_CODES: frozenset[str] = frozenset({
    "INVALID_FIELD", "MALFORMED_ID", "REQUIRED_FIELD_MISSING", "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "INVALID_CROSS_REFERENCE_KEY", "STRING_TOO_LONG", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "INVALID_TYPE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "DUPLICATE_VALUE", "NOT_FOUND", "MALFORMED_QUERY", "JSON_PARSER_ERROR", "INACTIVE_OWNER_OR_USER",
})
# Codes that refuse the integration user itself, not this record: every event would fail alike
# until someone grants the permission back, so consumption pauses instead of parking them all.
# (A record the user may not see is INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY: parked.)
ACCESS_CODES: frozenset[str] = frozenset({
    "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "API_DISABLED_FOR_ORG",
    "API_CURRENTLY_DISABLED",
})
SESSION_EXPIRED = "INVALID_SESSION_ID"
# Inside a failed composite graph, the nodes that did not fail themselves carry this code.
HALTED = "PROCESSING_HALTED"


# What the client library raises; caught at the adapter boundary and converted with from_exception.
CLIENT_ERRORS = (SalesforceError, requests.RequestException)


class SessionExpiredError(CrmAccessError):
    """The access token is no longer valid and this connection cannot get a new one by itself."""


class PermissionMissingError(CrmAccessError):
    """The integration user lacks an object, field or API permission the worker needs."""


class CertificateRefusedError(CrmUnavailableError):
    """TLS verification failed: the wrong CA bundle, or something in between presenting its own
    certificate. Retried while running (a certificate may be rotated), refused at start-up."""


def first_error(body: Any) -> tuple[str, str]:
    """``(errorCode, message)`` of a Salesforce error body (a list of errors, or one error)."""
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, Mapping):
            code = item.get("errorCode") or item.get("statusCode") or item.get("error")
            message = item.get("message") or item.get("error_description") or ""
            if code:
                return str(code), str(message)
    return "UNKNOWN_ERROR", str(body)[:500]


def classify(status: int, body: Any, what: str) -> WinbackError:
    """The error-tree member for a Salesforce error response (``status`` 0 = inside a batch)."""
    code, message = first_error(body)
    text = f"Salesforce {what}: {code}: {message}"
    if code in RATE_CODES or status == 429:
        return RateLimitedError(text)
    if code == SESSION_EXPIRED:
        return SessionExpiredError(text)
    if code in ACCESS_CODES:
        return PermissionMissingError(f"{text} (grant the Winback_Integration permission set "
                                      "to the integration user)")
    if code in TRANSIENT_CODES or status >= 500:
        return CrmUnavailableError(text)
    return CrmRejectedError(text)


def from_exception(exc: Exception, what: str) -> WinbackError:
    """Convert a simple-salesforce or requests exception; anything else is not ours to classify."""
    if isinstance(exc, SalesforceError):
        return classify(exc.status, exc.content, what)
    if isinstance(exc, requests.exceptions.SSLError):
        return CertificateRefusedError(f"Salesforce {what}: TLS verification failed: {exc}")
    if isinstance(exc, requests.Timeout):
        return CrmUnavailableError(f"Salesforce {what}: timed out: {exc}")
    if isinstance(exc, requests.ConnectionError):
        return CrmUnavailableError(f"Salesforce {what}: connection failed: {exc}")
    if isinstance(exc, requests.RequestException):
        # Includes a body that is not JSON (a proxy's HTML error page, a truncated reply).
        return CrmUnavailableError(f"Salesforce {what}: bad response: {exc}")
    raise TypeError(f"not a Salesforce client error: {exc!r}") from exc
