"""Setting timers: the ``winback.timer.due`` event a deadline publishes to the worker itself.

A timer is a CloudEvent with a deterministic id (``timer:{step key}:timer[:2]``) carrying its due
time. It is published through the ledger's outbox like any outgoing event, so a crash loses none,
and comes back through the work queue at the due time (the worker's delay tiers); a redelivered
timer is a duplicate in the ledger and acts once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import to_jsonable_python

from handlers.actions import PublishEvent
from handlers.context import DERIVED
from handlers.events import TIMER, ComplaintData, Event, TimerData
from handlers.plan import Timer

if TYPE_CHECKING:  # the scope module sets timers with this one
    from handlers.scope import Scope

TIMER_SOURCE = "winback/timers"
TimerKind = Literal["unless_done", "unless_held"]


def timer_key(step_key: str, round_: int = 1) -> str:
    return f"{step_key}:timer" if round_ == 1 else f"{step_key}:timer:{round_}"


def cloudevent(event: Event) -> dict[str, Any]:
    """``event`` as the CloudEvent it arrived as (validated data, extra fields kept)."""
    return {
        "specversion": "1.0", "id": event.id, "source": event.source, "type": event.type,
        "time": event.time.isoformat() if event.time else None,
        "data": event.data.model_dump(mode="json"),
    }


def set_timer(scope: Scope, kind: TimerKind, step_key: str, due_at: datetime, round_: int = 1
              ) -> tuple[Timer, PublishEvent]:
    """The plan's record of a timer on ``step_key``, and the event that brings it back at ``due_at``."""
    key = timer_key(step_key, round_)
    origin = scope.event
    severity = origin.data.severity if isinstance(origin.data, ComplaintData) else None
    data = TimerData(
        account_id=scope.plan.account_id, plan_key=scope.plan.key, timer_key=key, kind=kind,
        step_key=step_key, due_at=due_at, rule_id=scope.rule_id,
        spec_index=(scope.index or 1) - 1, round=round_, severity=severity,
        origin=cloudevent(origin),
        derived=to_jsonable_python({k: scope.values.get(k) for k in DERIVED[origin.type]}),
    )
    payload = {"specversion": "1.0", "id": f"timer:{key}", "source": TIMER_SOURCE,
               "type": TIMER, "datacontenttype": "application/json",
               "data": data.model_dump(mode="json", exclude_none=True)}
    timer = Timer(key=key, kind=kind, step_key=step_key, due_at=due_at, rule_id=scope.rule_id,
                  round=round_)
    return timer, PublishEvent(f"timer:{key}", TIMER, payload, scope.provenance, due_at=due_at)
