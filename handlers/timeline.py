"""A plan's history as lines a person can read, newest first: when, which event, which rule, what."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from handlers.plan import Plan


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a plan's timeline."""

    at: datetime
    event_id: str
    rule_id: str
    what: str


def _changes(plan: Plan) -> Iterable[TimelineEntry]:
    for c in plan.history:
        yield TimelineEntry(c.at, c.event_id, c.rule_id, c.what)


def _pending_timers(plan: Plan) -> Iterable[TimelineEntry]:
    """What the worker will look at, and when: at the top of the timeline while it is ahead. Once
    a timer fires, the history says what it found (a breach, a missed check-in, or kept)."""
    for t in plan.waiting_timers:
        check = "is done" if t.kind == "unless_done" else "was held"
        again = f" (round {t.round})" if t.round > 1 else ""
        yield TimelineEntry(t.due_at, f"timer:{t.key}", t.rule_id,
                            f"timer pending: checks that {t.step_key} {check}{again}")


# Each source turns one part of the plan into entries; a new kind of entry is one more function
# here. Suppressions, breaches and nudges need none: the history already says what was not
# written, and what each timer found and did.
SOURCES: tuple[Callable[[Plan], Iterable[TimelineEntry]], ...] = (_changes, _pending_timers)


def timeline(plan: Plan) -> list[TimelineEntry]:
    """Every entry of ``plan``, newest first; of two at the same moment, the one recorded later first."""
    entries = [entry for source in SOURCES for entry in source(plan)]
    indexed = sorted(enumerate(entries), key=lambda ie: (ie[1].at, ie[0]), reverse=True)
    return [entry for _, entry in indexed]


def timeline_text(plan: Plan, limit: int = 32000) -> str:
    """The timeline as plain lines, cut to ``limit`` characters (a long text field's size)."""
    lines = [f"{e.at:%Y-%m-%d %H:%M} {e.event_id} [{e.rule_id}] {e.what}" for e in timeline(plan)]
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    head = text[: limit - 2]  # room for the newline and the ellipsis that say it goes on
    return (head.rsplit("\n", 1)[0] if "\n" in head else head) + "\n…"
