"""The models of a rule's ``when``: per-field tests and their ``all`` / ``any`` / ``not`` combinations.

Evaluating them against an event is ``handlers.rules.conditions``; this module only holds the shape.
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator, model_validator

from handlers.rules.model_common import Scalar, StrictModel, Value


class Test(StrictModel):
    """The tests on one field; all given tests must hold."""

    equals: Value | None = None
    not_equals: Value | None = None
    in_: list[Scalar] | None = Field(None, alias="in")
    not_in: list[Scalar] | None = None
    greater_than: Value | None = None
    less_than: Value | None = None
    at_least: Value | None = None
    at_most: Value | None = None
    between: tuple[Value, Value] | None = None
    contains: Value | None = None
    matches: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("matches")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _not_empty(self) -> Test:
        if not self.model_fields_set:
            raise ValueError("a field test needs at least one of: " + ", ".join(TEST_NAMES))
        return self


TEST_NAMES = ("equals", "not_equals", "in", "not_in", "greater_than", "less_than", "at_least",
              "at_most", "between", "contains", "matches", "exists")


class All(StrictModel):
    all: list[Condition]


class Any_(StrictModel):
    any: list[Condition]


class Not(StrictModel):
    not_: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A bare mapping ``{field: test, field: test}`` means all of them.
FieldTests = dict[str, Test]
Condition = All | Any_ | Not | FieldTests

All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
