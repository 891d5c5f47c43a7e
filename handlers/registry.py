"""The one explicit mapping from event type to handler, and ``handle`` that dispatches on it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from handlers.complaint import handle_complaint
from handlers.errors import UnknownEventTypeError
from handlers.events import COMPLAINT, LAPSED, MEETING, TIMER, Event
from handlers.lapsed import handle_lapsed
from handlers.meeting import handle_meeting
from handlers.outcome import Handler, Outcome
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet
from handlers.timer import handle_timer

HANDLERS: Mapping[str, Handler] = MappingProxyType({
    LAPSED: handle_lapsed,
    COMPLAINT: handle_complaint,
    MEETING: handle_meeting,
    TIMER: handle_timer,
})


def handle(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Run ``event`` through its handler; ``plan`` is the account's latest plan, open or closed."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        known = ", ".join(HANDLERS)
        raise UnknownEventTypeError(f"no handler for event type {event.type!r} (known: {known})")
    return handler(event, plan, rules, now)
