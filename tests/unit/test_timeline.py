"""A plan's timeline: newest first, each line naming the event, the rule and what happened."""

from __future__ import annotations

from datetime import timedelta

from handlers.plan import Change
from handlers.timeline import timeline, timeline_text
from tests.unit.test_figures import T0, WON


def _change(minutes: int, what: str, rule: str = "method") -> Change:
    return Change(at=T0 + timedelta(minutes=minutes), event_id=f"e{minutes}", rules_version="v1",
                  rule_id=rule, what=what)


PLAN = WON.model_copy(update={"history": (
    _change(0, "opened"), _change(0, "discovery task written", "know-why-they-left"),
    _change(30, "suppressed apology A#1:apology: already apologised", "apologise-once"))})


def test_newest_first_and_later_recorded_first_at_the_same_moment() -> None:
    assert [(e.event_id, e.rule_id, e.what) for e in timeline(PLAN)] == [
        ("e30", "apologise-once", "suppressed apology A#1:apology: already apologised"),
        ("e0", "know-why-they-left", "discovery task written"),
        ("e0", "method", "opened"),
    ]


def test_text_names_time_event_and_rule_and_is_cut_to_its_field_size() -> None:
    assert timeline_text(PLAN).splitlines()[0] == (
        "2026-11-02 09:30 e30 [apologise-once] suppressed apology A#1:apology: already apologised")
    cut = timeline_text(PLAN, limit=60)
    assert len(cut) <= 60
    assert cut.endswith("…")
