"""The event contract: CloudEvents 1.0 structured JSON with typed ``data`` per event type."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import from_json

from handlers.errors import InvalidEventError, UnknownEventTypeError

LAPSED = "crm.customer.lapsed"
COMPLAINT = "crm.complaint.logged"
MEETING = "crm.meeting.held"
# A timer the worker publishes to itself (``handlers.deadlines``); it never comes from the CRM.
TIMER = "winback.timer.due"
CRM_EVENT_TYPES = (LAPSED, COMPLAINT, MEETING)
EVENT_TYPES = (*CRM_EVENT_TYPES, TIMER)

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
# Texts have no length limit here: a long one is fitted to its CRM field when written, with a
# marker, rather than costing the customer the step (a 100,000-character complaint is still one).
Text = str
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
Label = Annotated[str, StringConstraints(strip_whitespace=True)]
# Optional fields the CRM fills in as it likes: kept as text, and doubts noted on the plan
# (``doubtful_fields``). Sandboxes mask addresses as ``...@x.com.invalid``; test data uses
# ``.test`` and ``.local``: Salesforce keeps them, and so do we.
Email = Annotated[str, StringConstraints(strip_whitespace=True)]
Currency = Annotated[str, StringConstraints(strip_whitespace=True)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Severity = Literal["low", "medium", "high", "critical"]


class _Data(BaseModel):
    # Extra fields are allowed so the CRM can send more than we use; they are kept, not lost.
    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=False)


class LapsedData(_Data):
    """``crm.customer.lapsed``: an account stopped buying."""

    account_id: Id
    account_name: ShortText = Field(min_length=1)
    lapsed_at: date
    contact_id: Id | None = None
    contact_name: Label | None = None
    contact_email: Email | None = None
    owner_id: Id | None = None
    annual_value: float | None = Field(default=None, ge=0)
    currency: Currency | None = None
    segment: Label | None = None
    reason: Text | None = None
    competitor: Label | None = None
    do_not_contact: bool = False


class ComplaintData(_Data):
    """``crm.complaint.logged``: a customer complained; ``summary`` is in their own words."""

    account_id: Id
    complaint_id: Id
    logged_at: AwareDatetime
    severity: Severity
    summary: Text = Field(min_length=1)
    account_name: Label | None = None
    contact_id: Id | None = None
    contact_name: Label | None = None
    contact_email: Email | None = None
    owner_id: Id | None = None
    category: Label | None = None
    channel: Label | None = None
    do_not_contact: bool = False


class MeetingData(_Data):
    """``crm.meeting.held``: an exit interview, check-in or catch-up took place."""

    account_id: Id
    meeting_id: Id
    held_at: AwareDatetime
    kind: Literal["exit_interview", "check_in", "catch_up"]
    owner_id: Id | None = None
    notes: Text | None = None
    desired_result: Text | None = None
    current_beliefs: list[Text] = Field(default_factory=list)
    target_beliefs: list[Text] = Field(default_factory=list)
    new_experiences: list[Text] = Field(default_factory=list)
    feedback: list[Text] = Field(default_factory=list)
    sentiment: int | None = Field(default=None, ge=-2, le=2)
    outcome: Literal["continuing", "revived", "declined"] | None = None


StepState = Literal["open", "done", "pending", "cancelled", "missing"]


class TimerData(_Data):
    """``winback.timer.due``: at ``due_at``, look at ``step_key`` in the CRM and act if not done.

    ``origin`` is the CloudEvent that set the timer (its texts are rendered as for it),
    ``derived`` the facts its handler worked out, ``spec_index`` the place in the rule's ``then``.
    ``observed`` is filled in by the worker from the CRM just before handling, never by a sender.
    """

    account_id: Id
    plan_key: Key
    timer_key: Key
    kind: Literal["unless_done", "unless_held"]
    step_key: Key
    due_at: AwareDatetime
    rule_id: Id
    spec_index: int = Field(ge=0)
    round: int = Field(1, ge=1, le=2)
    severity: Severity | None = None
    origin: dict[str, Any]
    derived: dict[str, Any] = Field(default_factory=dict)
    observed: StepState | None = None


EventData = LapsedData | ComplaintData | MeetingData | TimerData
DATA_MODELS: dict[str, type[_Data]] = {
    LAPSED: LapsedData,
    COMPLAINT: ComplaintData,
    MEETING: MeetingData,
    TIMER: TimerData,
}


class Envelope(BaseModel):
    """The CloudEvents 1.0 attributes we rely on; ``data`` is validated by type afterwards."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Id
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    time: AwareDatetime | None = None
    datacontenttype: Literal["application/json"] | None = None
    data: dict[str, Any]


class Event(BaseModel):
    """A validated event: envelope attributes plus typed data."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    source: str
    time: datetime | None
    data: EventData

    @property
    def account_id(self) -> str:
        return self.data.account_id


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        parts.append(f"{where or '(root)'}: {err['msg']}")
    return "; ".join(parts)


def _loads(body: bytes | str) -> Any:
    """``json.loads(body)``, through pydantic's own JSON parser (a third of the cost) for a body
    it takes: the same values, big integers, NaN and duplicate keys included. A body it refuses
    (malformed, or what only json takes: a byte-order mark, a lone surrogate, UTF-16) goes to
    json, so it is taken as before or refused in json's words, which is what a parked reason says.
    (A str it cannot encode, a lone surrogate, is a TypeError to it.)
    """
    try:
        return from_json(body)
    except (ValueError, TypeError):
        return json.loads(body)


def parse_event(body: bytes | str) -> Event:
    """Parse and validate one message body; raise a PermanentError subclass saying exactly why not."""
    try:
        raw = _loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidEventError(f"body is a JSON {type(raw).__name__}, expected an object")
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEventError(f"not a CloudEvent: {_describe(exc)}") from exc
    model = DATA_MODELS.get(envelope.type)
    if model is None:
        known = ", ".join(EVENT_TYPES)
        raise UnknownEventTypeError(f"unknown event type {envelope.type!r} (known: {known})")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEventError(f"invalid {envelope.type}: {_describe(exc, 'data')}") from exc
    return Event(
        id=envelope.id,
        type=envelope.type,
        source=envelope.source,
        time=envelope.time,
        data=data,
    )


def peek_ids(body: bytes | str) -> dict[str, str]:
    """Best-effort event id, type and account id of a body that may be invalid, for logs."""
    try:
        raw = _loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(raw, dict):
        return {}
    found = {k: raw[k] for k in ("id", "type") if isinstance(raw.get(k), str)}
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("account_id"), str):
        found["account_id"] = data["account_id"]
    return {("event_id" if k == "id" else "event_type" if k == "type" else k): v
            for k, v in found.items()}


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per event type: the envelope with ``data`` replaced by the typed model."""
    schemas: dict[str, dict[str, Any]] = {}
    for event_type in CRM_EVENT_TYPES:  # what the CRM sends; timers are the worker's own
        model = DATA_MODELS[event_type]
        envelope = Envelope.model_json_schema()
        data_schema = model.model_json_schema()
        envelope["title"] = f"{event_type} (CloudEvents 1.0)"
        envelope["properties"]["type"] = {"const": event_type, "type": "string"}
        envelope["properties"]["data"] = {"$ref": "#/$defs/Data"}
        defs = envelope.setdefault("$defs", {})
        defs.update(data_schema.pop("$defs", {}))
        defs["Data"] = data_schema
        envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schemas[event_type] = envelope
    return schemas
