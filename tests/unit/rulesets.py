"""Rule sets (from config/rules.yaml and config/templates/) and events for the unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from handlers.actions import CreateTask, SavePlan, SetCheckInStatus
from handlers.events import (
    COMPLAINT,
    LAPSED,
    MEETING,
    ComplaintData,
    Event,
    LapsedData,
    MeetingData,
)
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.rules.model import RuleFile
from handlers.rules.ruleset import RuleSet
from handlers.templates import Templates

CONFIG = Path(__file__).resolve().parents[2] / "config"


@cache
def templates() -> Templates:
    folder = CONFIG / "templates"
    return Templates({p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.j2"))})


def raw_rules() -> dict[str, Any]:
    """config/rules.yaml as plain data, to derive variants from."""
    data = YAML(typ="safe").load((CONFIG / "rules.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def default_rules() -> RuleSet:
    """The default rule set, exactly as shipped."""
    return RuleSet(RuleFile.model_validate(raw_rules()), templates(), "config/rules.yaml")


def rules_from(data: dict[str, Any]) -> RuleSet:
    return RuleSet(RuleFile.model_validate(data), templates(), "<test>")


def with_settings(**settings: Any) -> RuleSet:
    """The default rules with some settings replaced."""
    data = raw_rules()
    data["settings"] = {**data["settings"], **settings}
    return rules_from(data)


# --- events ------------------------------------------------------------------------------------

def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def lapsed(event_id: str = "evt-lapsed", at: str = "2026-11-02T09:00", **data: Any) -> Event:
    fields: dict[str, Any] = {
        "account_id": "ACC-1", "account_name": "Northwind Traders", "lapsed_at": "2026-11-01",
        "contact_id": "CON-1", "contact_name": "Dana Reyes",
        "contact_email": "dana@northwind.example", "owner_id": "USR-ALICE",
        "annual_value": 48000, "currency": "EUR",
    }
    return Event(id=event_id, type=LAPSED, source="test", time=_at(at),
                 data=LapsedData.model_validate({**fields, **data}))


def complaint(event_id: str = "evt-complaint", at: str = "2026-11-03T10:00",
              **data: Any) -> Event:
    fields: dict[str, Any] = {
        "account_id": "ACC-1", "complaint_id": "CMP-1", "logged_at": _at(at).isoformat(),
        "severity": "medium", "owner_id": "USR-ALICE",
        "summary": "We waited three weeks for a reply to ticket 4411.",
    }
    return Event(id=event_id, type=COMPLAINT, source="test", time=_at(at),
                 data=ComplaintData.model_validate({**fields, **data}))


def meeting(event_id: str, at: str, **data: Any) -> Event:
    fields: dict[str, Any] = {
        "account_id": "ACC-1", "meeting_id": f"MTG-{event_id}", "held_at": _at(at).isoformat(),
        "kind": "check_in", "owner_id": "USR-ALICE",
    }
    return Event(id=event_id, type=MEETING, source="test", time=_at(at),
                 data=MeetingData.model_validate({**fields, **data}))


def later(event: Event, minutes: int = 1) -> datetime:
    """A processing clock shortly after the event happened."""
    assert event.time is not None
    return event.time + timedelta(minutes=minutes)


# --- reading outcomes --------------------------------------------------------------------------

def written(outcome: Outcome) -> list[tuple[str, str]]:
    """(action type, key-or-kind) of every action, in order: the exact shape of an outcome."""
    shown: list[tuple[str, str]] = []
    for action in outcome.actions:
        if isinstance(action, SavePlan):
            shown.append(("SavePlan", action.plan.key))
        elif isinstance(action, SetCheckInStatus):
            shown.append((f"SetCheckInStatus:{action.status}", ",".join(action.keys)))
        else:
            shown.append((type(action).__name__, action.key))
    return shown


def tasks(outcome: Outcome, kind: str | None = None) -> list[CreateTask]:
    return [a for a in outcome.actions
            if isinstance(a, CreateTask) and (kind is None or a.kind == kind)]


def one_task(outcome: Outcome, kind: str) -> CreateTask:
    found = tasks(outcome, kind)
    assert len(found) == 1, f"expected one {kind} task, got {[t.key for t in found]}"
    return found[0]


def plan_of(outcome: Outcome) -> Plan:
    assert outcome.plan is not None
    return outcome.plan


def suppressed(outcome: Outcome) -> list[tuple[str, str]]:
    return [(s.action, s.reason) for s in outcome.suppressed]
