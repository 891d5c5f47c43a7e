"""The shape of a sources file: each source picks changes of one entity and fills one event type."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from handlers.events import EVENT_TYPES

ChangeType = Literal["CREATE", "UPDATE", "UNDELETE"]
Convert = Literal["text", "int", "lines", "lower"]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
# Values every change offers besides its record's fields.
SPECIAL = ("$record_id", "$commit_time", "$commit_date", "$entity")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Exists(_Strict):
    exists: bool


class FieldSpec(_Strict):
    """Where one data field comes from: a record field (or a fixed value), converted."""

    field: str | None = None
    value: str | int | None = None
    map: dict[str, str] | None = None  # field value -> event value (e.g. Priority -> severity)
    default: str | None = None  # the field to use when the first is empty
    convert: Convert = Field("text", alias="as")


Condition = str | int | bool | list[str] | Exists


class Source(_Strict):
    """One mapping: changes of ``entity`` (of these types, touching these fields, matching ``when``)."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,29}$")]
    entity: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    change: tuple[ChangeType, ...] = ("CREATE",)
    changed: list[str] = Field(default_factory=list)
    when: dict[str, Condition] = Field(default_factory=dict)
    fetch: bool = False  # read the whole record: an update event carries only what changed
    emit: EventType
    data: dict[str, str | FieldSpec]


class SourcesFile(_Strict):
    version: Literal[1]
    sources: list[Source]


def spec(raw: str | FieldSpec) -> FieldSpec:
    """A bare string is a field name (or a ``$`` special)."""
    return raw if isinstance(raw, FieldSpec) else FieldSpec(field=raw)


def fields_read(source: Source) -> list[str]:
    """Every record field the source reads: for a fetch, and for checks."""
    names: list[str] = list(source.when)
    for raw in source.data.values():
        s = spec(raw)
        names += [n for n in (s.field, s.default) if n and not n.startswith("$")]
    return list(dict.fromkeys(names))

