"""Getting a Salesforce session: the OAuth 2.0 JWT bearer flow, or a ready access token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
import requests
from pydantic import SecretStr

from handlers.errors import CrmAccessError, CrmUnavailableError
from worker.crm.salesforce_errors import from_exception

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_JWT_LIFETIME = 180  # Salesforce accepts an assertion for at most three minutes


class LoginRefusedError(CrmAccessError):
    """The token endpoint refused us (bad key, unknown app, user not pre-authorised...)."""


@dataclass(frozen=True)
class Token:
    """An access token and the instance it is good for."""

    access_token: SecretStr
    instance_url: str


@dataclass(frozen=True)
class FixedToken:
    """Token mode: a token someone else obtained; it cannot be renewed from here."""

    token: Token
    renewable = False

    def fetch(self, http: requests.Session) -> Token:
        return self.token


@dataclass(frozen=True)
class JwtBearer:
    """JWT bearer mode: a connected app's consumer key, the integration user, and the app's key."""

    login_url: str
    client_id: str
    username: str
    private_key: SecretStr
    renewable = True

    def fetch(self, http: requests.Session) -> Token:
        """Exchange a signed assertion for an access token at ``{login_url}/services/oauth2/token``."""
        data = {"grant_type": JWT_GRANT, "assertion": self.assertion()}
        url = self.login_url.rstrip("/") + "/services/oauth2/token"
        try:
            response = http.post(url, data=data)
            body = response.json()
        except requests.RequestException as exc:  # TLS refused, timed out, unreachable, not JSON
            raise from_exception(exc, f"login at {self.login_url}") from exc
        if response.status_code >= 500 or not isinstance(body, dict):
            raise CrmUnavailableError(f"Salesforce login: HTTP {response.status_code}: {body}")
        if response.status_code != 200:
            raise LoginRefusedError(
                f"Salesforce login refused for {self.username} at {self.login_url}: "
                f"{body.get('error')}: {body.get('error_description')}"
            )
        return Token(SecretStr(body["access_token"]), body["instance_url"])

    def assertion(self) -> str:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": jwt_audience(self.login_url),
            "exp": int(time.time()) + _JWT_LIFETIME,
        }
        try:
            return jwt.encode(claims, self.private_key.get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise LoginRefusedError(f"the JWT private key cannot sign: {exc}") from exc


Credentials = FixedToken | JwtBearer


def jwt_audience(login_url: str) -> str:
    """The ``aud`` claim Salesforce expects for a login URL.

    Production and sandbox logins (including My Domain hosts) use the two fixed audiences; any
    other host (an Experience Cloud site, a test server) is its own audience.
    """
    host = urlsplit(login_url).hostname or ""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".salesforce.com"):
        return "https://login.salesforce.com"
    return login_url.rstrip("/")
