"""One change of one record in, one CloudEvent (or the reason there is none) out. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.errors import InvalidEventError, PermanentError
from handlers.events import parse_event
from handlers.sources.model import Condition, Exists, FieldSpec, Source, spec


class UnmappableError(PermanentError):
    """A change a source picked that cannot become a valid event; the message says why."""


@dataclass(frozen=True)
class Change:
    """One record's change, as the ``ChangeEventHeader`` and the payload describe it."""

    entity: str
    change_type: str
    record_id: str
    fields: Mapping[str, Any]  # the payload's fields (only the changed ones, on an update)
    changed: Sequence[str]
    commit_timestamp: int  # milliseconds since the epoch
    sequence: int
    topic: str = ""

    @property
    def committed_at(self) -> datetime:
        return datetime.fromtimestamp(self.commit_timestamp / 1000, UTC)


def select(sources: Sequence[Source], change: Change) -> Source | None:
    """The first source for this entity and change type whose ``changed`` fields were touched."""
    for source in sources:
        if source.entity != change.entity or change.change_type not in source.change:
            continue
        if source.changed and not set(source.changed) & set(change.changed):
            continue
        return source
    return None


def _holds(condition: Condition, value: Any) -> bool:
    if isinstance(condition, Exists):
        return (value not in (None, "")) == condition.exists
    if isinstance(condition, list):
        return value in condition
    return bool(value == condition)


def unmet(source: Source, record: Mapping[str, Any]) -> str | None:
    """Why the record does not pass ``when``, or None when it does."""
    for name, condition in source.when.items():
        if not _holds(condition, record.get(name)):
            return f"{name} is {record.get(name)!r}, the source wants {condition!r}"
    return None


def _special(name: str, change: Change) -> Any:
    return {
        "$record_id": change.record_id,
        "$commit_time": change.committed_at.isoformat().replace("+00:00", "Z"),
        "$commit_date": change.committed_at.date().isoformat(),
        "$entity": change.entity,
    }[name]


def _lookup(record: Mapping[str, Any], name: str, change: Change) -> Any:
    if name.startswith("$"):
        return _special(name, change)
    value: Any = record
    for part in name.split("."):  # Account.Name: a parent's field from a fetched record
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _convert(s: FieldSpec, value: Any) -> Any:
    if value in (None, ""):
        return None
    if s.map is not None:
        return s.map.get(str(value), s.map.get("*"))
    if s.convert == "int":
        return int(float(value))
    if s.convert == "lines":  # one belief, experience or piece of feedback per line
        return [line.strip() for line in str(value).splitlines() if line.strip()]
    return str(value).lower() if s.convert == "lower" else value


def _value(raw: str | FieldSpec, record: Mapping[str, Any], change: Change) -> Any:
    s = spec(raw)
    if s.value is not None:
        return s.value
    value = _lookup(record, s.field, change) if s.field else None
    if value in (None, "") and s.default:
        value = _lookup(record, s.default, change)
    return _convert(s, value)


def event_id(source: Source, change: Change) -> str:
    """The same change always gets the same id, so a replayed change meets the worker's ledger."""
    return f"{source.id}:{change.record_id}:{change.commit_timestamp}:{change.sequence}"


def build(source: Source, record: Mapping[str, Any], change: Change, origin: str) -> dict[str, Any]:
    """The CloudEvent for ``change`` (``record`` holds its fields), validated as the worker will."""
    data = {name: _value(raw, record, change) for name, raw in source.data.items()}
    event = {
        "specversion": "1.0", "id": event_id(source, change), "source": origin,
        "type": source.emit, "time": _special("$commit_time", change),
        "datacontenttype": "application/json",
        "data": {k: v for k, v in data.items() if v is not None},
    }
    try:
        parse_event(json.dumps(event, default=str))
    except InvalidEventError as exc:
        raise UnmappableError(f"source '{source.id}' on {change.entity} {change.record_id}: "
                              f"{exc}") from exc
    return event
