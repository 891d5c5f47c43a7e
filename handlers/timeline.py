"""A plan's history as lines a person can read, newest first: when, which event, which rule, what."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

from handlers.plan import Plan


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a plan's timeline."""

    at: datetime
    event_id: str
    rule_id: str
    what: str


# An entry as its parts, (at, event_id, rule_id, what): the text is written from these directly,
# with no entry object per line (the Salesforce adapter writes it with every plan it saves).
Row = tuple[datetime, str, str, str]


def _changes(plan: Plan) -> Iterable[Row]:
    return [(c.at, c.event_id, c.rule_id, c.what) for c in plan.history]


def _pending_timers(plan: Plan) -> Iterable[Row]:
    """What the worker will look at, and when: at the top of the timeline while it is ahead. Once
    a timer fires, the history says what it found (a breach, a missed check-in, or kept)."""
    for t in plan.waiting_timers:
        check = "is done" if t.kind == "unless_done" else "was held"
        again = f" (round {t.round})" if t.round > 1 else ""
        yield (t.due_at, f"timer:{t.key}", t.rule_id,
               f"timer pending: checks that {t.step_key} {check}{again}")


# Each source turns one part of the plan into entries; a new kind of entry is one more function
# here. Suppressions, breaches and nudges need none: the history already says what was not
# written, and what each timer found and did.
SOURCES: tuple[Callable[[Plan], Iterable[Row]], ...] = (_changes, _pending_timers)


def _newest_first(plan: Plan) -> list[Row]:
    """Every entry of ``plan``, newest first; of two at the same moment, the one recorded later
    first: sorted oldest first (a stable sort keeps the order they were recorded in), reversed."""
    rows = [row for source in SOURCES for row in source(plan)]
    rows.sort(key=itemgetter(0))
    rows.reverse()
    return rows


def timeline(plan: Plan) -> list[TimelineEntry]:
    """Every entry of ``plan``, newest first; of two at the same moment, the one recorded later first."""
    return [TimelineEntry(*row) for row in _newest_first(plan)]


def _minute(at: datetime) -> str:
    """``f"{at:%Y-%m-%d %H:%M}"``: the same text from ``isoformat``, at a third of the cost, for
    every year strftime writes with four digits (``%Y`` writes year 999 as ``999``)."""
    return at.isoformat(" ", "minutes")[:16] if at.year >= 1000 else f"{at:%Y-%m-%d %H:%M}"


def timeline_text(plan: Plan, limit: int = 32000) -> str:
    """The timeline as plain lines, cut to ``limit`` characters (a long text field's size)."""
    text = "\n".join([f"{_minute(at)} {event_id} [{rule_id}] {what}"
                      for at, event_id, rule_id, what in _newest_first(plan)])
    if len(text) <= limit:
        return text
    head = text[: limit - 2]  # room for the newline and the ellipsis that say it goes on
    return (head.rsplit("\n", 1)[0] if "\n" in head else head) + "\n…"
