"""The error tree every layer raises and the consumer turns into ack, retry or park.

    WinbackError
    ├── TransientError          retry later: the world may fix itself
    │   ├── CrmUnavailableError     CRM down, timed out, connection refused, row locked
    │   ├── RateLimitedError        CRM or org API allowance exhausted
    │   ├── PlanConflictError       another worker saved the plan first: handle the event again
    │   └── BrokerLostError         AMQP connection or channel gone
    └── PermanentError          park at once: retrying cannot help
        ├── InvalidEventError       not JSON, not a CloudEvent, fails the data schema
        ├── UnknownEventTypeError   a type no handler is registered for
        ├── CrmRejectedError        the CRM refused the write (bad field, bad id, validation)
        └── RuleError               the rules or a template cannot produce the action

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
