"""The error tree every layer raises, and what the worker does with each branch.

    WinbackError
    ├── TransientError          RETRY: the world may fix itself; broker-level retry queues with
    │   │                       back-off (WINBACK_RETRY_DELAYS), then park
    │   ├── CrmUnavailableError     CRM down, timed out, connection refused, row locked; the adapter
    │   │   │                       also retries a few times in-process first (tenacity)
    │   │   └── CertificateRefusedError  TLS verification failed (worker.crm.salesforce_errors):
    │   │                                retried while running, STOPS start-up
    │   ├── RateLimitedError        CRM or org API allowance exhausted
    │   ├── PlanConflictError       another worker saved the plan first: never re-sent in-process
    │   │                           (the stale revision cannot succeed); handled again on the new plan
    │   └── BrokerLostError         AMQP connection or channel gone (worker.consumer): reconnect
    │       │                       with back-off; unacked messages return to the queue
    │       └── BrokerRefusedError  the broker refused the credentials or vhost: STOPS start-up
    │                               (exit 2); at run time reported once and retried with back-off
    ├── CrmAccessError          PAUSE: the CRM refuses the worker itself, so every message would
    │   │                       fail alike; consumption pauses (messages stay queued), /readyz
    │   │                       fails, checked again with back-off; never parks; STOPS start-up
    │   ├── SessionExpiredError     a fixed access token expired (worker.crm.salesforce_errors)
    │   ├── LoginRefusedError       the login endpoint refused the JWT (worker.crm.salesforce_auth)
    │   └── PermissionMissingError  the integration user lost an object or API permission
    │                               (worker.crm.salesforce_errors)
    ├── PermanentError          PARK at once: retrying cannot help this message
    │   ├── InvalidEventError       not JSON, not a CloudEvent, fails the data schema
    │   ├── UnknownEventTypeError   a type no handler is registered for
    │   ├── CrmRejectedError        the CRM refused the write (bad field, bad id, validation)
    │   └── RuleError               the rules or a template cannot produce the action
    └── ConfigError             STOP: a setting, the topology or the CRM set-up is wrong; start-up
        │                       ends with one line (exit 2), never raised per message
        └── RulesInvalidError       the rules file, with file:line problems
                                    (handlers.rules.errors); on reload refused, old rules kept

Library errors are converted once, where they are caught (adapters), with ``raise ... from exc``.
"""

from __future__ import annotations


class WinbackError(Exception):
    """Base of every error the worker classifies."""


class TransientError(WinbackError):
    """The operation may succeed if tried again later."""


class CrmUnavailableError(TransientError):
    """The CRM could not be reached or asked us to come back later."""


class RateLimitedError(TransientError):
    """The CRM's request allowance is exhausted for now."""


class PlanConflictError(TransientError):
    """The plan changed in the CRM since it was read: the event must be handled again on it."""


class BrokerLostError(TransientError):
    """The AMQP connection or channel was lost."""


class BrokerRefusedError(BrokerLostError):
    """The broker refused the credentials or the virtual host."""


class CrmAccessError(WinbackError):
    """The CRM refuses the worker itself (credentials, permissions): pause, do not park."""


class PermanentError(WinbackError):
    """The operation can never succeed as it stands: park the message."""


class InvalidEventError(PermanentError):
    """The message is not a valid event of the contract."""


class UnknownEventTypeError(PermanentError):
    """No handler is registered for the event's type."""


class CrmRejectedError(PermanentError):
    """The CRM refused the write for a reason a retry cannot change."""


class RuleError(PermanentError):
    """The rules, or a template they name, cannot produce the action."""


class ConfigError(WinbackError):
    """A setting or the rules file is invalid; raised at start-up, never per message."""
