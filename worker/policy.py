"""The one decision per message: acknowledge, retry later through the broker, pause, or park."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.errors import CrmAccessError, PermanentError, TransientError


@dataclass(frozen=True)
class Ack:
    """Done (or a duplicate of something done): remove it from the queue."""


@dataclass(frozen=True)
class Retry:
    """Try again after ``delay`` seconds, through retry queue number ``tier``. An event held back
    behind an earlier one of its account follows it into its tier without spending an attempt."""

    tier: int
    delay: float
    reason: str
    spends_attempt: bool = True


@dataclass(frozen=True)
class Park:
    """Never retry: move to the parking queue with the reason in its headers."""

    reason: str
    error: str  # the error class name, for x-winback-error


@dataclass(frozen=True)
class Pause:
    """The CRM refuses the worker itself: release the message to its queue (no attempt counted)
    and pause consumption until the CRM accepts the worker again. Never parks."""

    reason: str
    error: str


Disposition = Ack | Retry | Park | Pause


@dataclass(frozen=True)
class RetryPolicy:
    """Broker-level retries: one delay per attempt, then park. Adapters retry briefly on their own
    (tenacity) before a TransientError reaches here, so the two layers never multiply blindly:
    the adapter's few quick tries ride out a blip, the broker's delays ride out an outage.
    """

    delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)

    def decide(self, error: BaseException | None, attempts: int) -> Disposition:
        """``attempts`` is how many broker-level retries this message has had already."""
        if error is None:
            return Ack()
        name = type(error).__name__
        if isinstance(error, CrmAccessError):
            return Pause(reason=str(error) or name, error=name)
        if isinstance(error, PermanentError):
            return Park(reason=str(error) or name, error=name)
        # Transient errors, and bugs we did not foresee, get the bounded retries; a bug that keeps
        # failing ends up parked with its message instead of looping forever.
        if attempts < len(self.delays):
            kind = "transient" if isinstance(error, TransientError) else "unexpected"
            return Retry(tier=attempts, delay=self.delays[attempts],
                         reason=f"{kind} {name}: {error}")
        return Park(reason=f"gave up after {attempts} retries: {name}: {error}", error=name)
