"""The ack / retry / park decision, as a table."""

from __future__ import annotations

import pytest

from handlers.errors import (
    CrmAccessError,
    CrmRejectedError,
    CrmUnavailableError,
    InvalidEventError,
    RateLimitedError,
    RuleError,
    UnknownEventTypeError,
)
from worker.crm.salesforce_auth import LoginRefusedError
from worker.crm.salesforce_errors import PermissionMissingError, SessionExpiredError
from worker.policy import Ack, Park, Pause, Retry, RetryPolicy

POLICY = RetryPolicy(delays=(5.0, 30.0, 120.0))


@pytest.mark.parametrize(
    ("error", "attempts", "expected"),
    [
        (None, 0, Ack()),
        (None, 3, Ack()),
        (InvalidEventError("bad"), 0, Park("bad", "InvalidEventError")),
        (UnknownEventTypeError("what"), 0, Park("what", "UnknownEventTypeError")),
        (CrmRejectedError("INVALID_FIELD"), 0, Park("INVALID_FIELD", "CrmRejectedError")),
        (RuleError("no template"), 2, Park("no template", "RuleError")),
        (CrmUnavailableError("down"), 0, Retry(0, 5.0, "transient CrmUnavailableError: down")),
        (RateLimitedError("limit"), 1, Retry(1, 30.0, "transient RateLimitedError: limit")),
        (CrmUnavailableError("down"), 2, Retry(2, 120.0, "transient CrmUnavailableError: down")),
        (CrmUnavailableError("down"), 3,
         Park("gave up after 3 retries: CrmUnavailableError: down", "CrmUnavailableError")),
        (KeyError("bug"), 0, Retry(0, 5.0, "unexpected KeyError: 'bug'")),
        (KeyError("bug"), 3, Park("gave up after 3 retries: KeyError: 'bug'", "KeyError")),
        (SessionExpiredError("token"), 0, Pause("token", "SessionExpiredError")),
        (SessionExpiredError("token"), 3, Pause("token", "SessionExpiredError")),  # never parked
        (LoginRefusedError("refused"), 1, Pause("refused", "LoginRefusedError")),
        (PermissionMissingError("perm"), 0, Pause("perm", "PermissionMissingError")),
        (CrmAccessError("denied"), 9, Pause("denied", "CrmAccessError")),
    ],
)
def test_decision_table(error: BaseException | None, attempts: int, expected: object) -> None:
    assert POLICY.decide(error, attempts) == expected


def test_no_retries_configured_parks_transient_errors_at_once() -> None:
    assert isinstance(RetryPolicy(delays=()).decide(CrmUnavailableError("x"), 0), Park)
