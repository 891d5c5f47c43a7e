"""The adapter's one retry layer: bounded exponential backoff with full jitter, via tenacity."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from handlers.errors import PlanConflictError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient Salesforce failure is tried again in-process.

    After ``attempts`` the failure is handed to the broker-level retry as a ``TransientError``,
    so the two layers never multiply: this one is short (seconds), that one is long (minutes).
    """

    attempts: int = 4
    initial: float = 0.5
    maximum: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried while it raises a resendable error; the last one is re-raised.

        Credentials and permissions (CrmAccessError) are not retried here: the client already
        logged in again once, and the worker pauses for them instead.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts), wait=self._wait(), sleep=self.sleep,
            retry=retry_if_exception_type(TransientError) & retry_if_not_exception_type(
                PlanConflictError), reraise=True, before_sleep=_log_retry,
        )
        return retrying(fn)

    def rounds(self, fn: Callable[[], int]) -> None:
        """Call ``fn`` until it reports nothing left to retry, or the attempts run out."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts), wait=self._wait(), sleep=self.sleep,
            retry=retry_if_result(lambda left: left > 0), before_sleep=_log_retry,
            retry_error_callback=lambda state: None,
        )
        retrying(fn)

    def _wait(self) -> wait_random_exponential:
        return wait_random_exponential(multiplier=self.initial, max=self.maximum)


def resendable(error: BaseException | None) -> TypeGuard[TransientError]:
    """Would sending the same request again have a chance? Transient, except a plan conflict:
    its stale revision is taken for good, so only handling the event again can succeed."""
    return isinstance(error, TransientError) and not isinstance(error, PlanConflictError)


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    structlog.get_logger("winback.salesforce").warning(
        "salesforce_retry_scheduled", attempt=state.attempt_number,
        wait=round(state.upcoming_sleep, 3), error=str(error) if error else "records to retry",
    )
