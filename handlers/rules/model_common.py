"""Building blocks the rules-file models share: the strict base, setting references, durations, owners."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettingRef(StrictModel):
    """A value taken from ``settings`` so a threshold is written once: ``{setting: name}``."""

    setting: str


Scalar = str | int | float | bool
Value = Scalar | SettingRef


class Duration(StrictModel):
    """``{days: 3}``, ``{hours: 4}``, ``{minutes: 20}``; parts add up. ``sla: true`` uses the SLA.

    ``seconds`` is there for timers (``unless_done``) in test rule sets, where waiting minutes
    would make a test slow."""

    days: int = Field(0, ge=0, le=3650)
    hours: int = Field(0, ge=0, le=10_000)
    minutes: int = Field(0, ge=0, le=100_000)
    seconds: int = Field(0, ge=0, le=1_000_000)
    sla: bool = False

    def to_timedelta(self, sla_minutes: int) -> timedelta:
        minutes = self.minutes + sla_minutes if self.sla else self.minutes
        return timedelta(days=self.days, hours=self.hours, minutes=minutes, seconds=self.seconds)


class Owner(StrictModel):
    """Who gets the work: ``{field: owner_id}``, ``{queue: survey}`` or ``{user: 005...}``.

    A field that is empty on the event falls back to ``fallback`` (a queue name), and then to the
    ``default`` owner in settings.
    """

    field: str | None = None
    queue: str | None = None
    user: str | None = None
    fallback: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Owner:
        chosen = [k for k in ("field", "queue", "user") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("owner needs exactly one of 'field', 'queue' or 'user'")
        return self


DEFAULT_OWNER = Owner(field="owner_id")
