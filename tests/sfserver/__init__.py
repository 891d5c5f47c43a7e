"""A Salesforce-compatible HTTPS test server, and the adapter wired to it."""

from tests.sfserver.sandbox import FAST_RETRY, jwt_settings, salesforce_crm, token_settings
from tests.sfserver.server import SalesforceServer

__all__ = ["FAST_RETRY", "SalesforceServer", "jwt_settings", "salesforce_crm", "token_settings"]
