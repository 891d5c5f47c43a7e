"""Every text fitted to the field it is written to, with a visible marker; never refused as too long.

Salesforce refuses a value longer than its field (``STRING_TOO_LONG``) and with it the whole
event: a 100,000-character complaint would never be acknowledged. So each text is cut to the
field's length (read from describe at start-up; the embedded CRM uses Salesforce's standard
lengths) and ends with ``MARKER``, so a reader knows there is more on the source record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from handlers.actions import Action, CreateCase, CreateTask, DraftEmail, EventChange, ScheduleCheckIn

MARKER = "… (truncated; full text on the source record)"
PLAN, SUPPRESSION = "Winback_Plan__c", "Winback_Suppression__c"
Limits = Mapping[tuple[str, str], int]  # (object, field) -> length

# The texts fitted, per object, with Salesforce's standard lengths (and the shipped metadata's).
STANDARD_LIMITS: dict[tuple[str, str], int] = {
    ("Task", "Subject"): 255, ("Task", "Description"): 32_000,
    ("Event", "Subject"): 255, ("Event", "Description"): 32_000,
    ("EmailMessage", "Subject"): 3_000, ("EmailMessage", "HtmlBody"): 131_072,
    ("EmailMessage", "TextBody"): 131_072,
    ("Case", "Subject"): 255, ("Case", "Description"): 32_000,
    (PLAN, "Name"): 80, (PLAN, "Closing_Reason__c"): 255, (PLAN, "Desired_Result__c"): 32_768,
    (PLAN, "Lapse_Reason__c"): 32_768,
    **{(SUPPRESSION, name): 255 for name in ("Reason__c", "Record_Key__c", "Event_Id__c", "Rule_Id__c")},
}
# Where each action's texts land: the embedded CRM fits them to the same lengths.
_ACTION_FIELDS: dict[type[Any], dict[str, tuple[str, str]]] = {
    CreateTask: {"subject": ("Task", "Subject"), "description": ("Task", "Description")},
    ScheduleCheckIn: {"subject": ("Event", "Subject"), "description": ("Event", "Description")},
    CreateCase: {"subject": ("Case", "Subject"), "description": ("Case", "Description")},
    DraftEmail: {"subject": ("EmailMessage", "Subject"), "body_html": ("EmailMessage", "HtmlBody"),
                 "body_text": ("EmailMessage", "TextBody")},
}


def fit(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its start and ``MARKER``."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(MARKER), 0)] + MARKER[: limit]


def limits_from(describes: Mapping[str, Mapping[str, Any] | None]) -> dict[tuple[str, str], int]:
    """The fitted fields' lengths as the org describes them (standard lengths where it says none)."""
    limits = dict(STANDARD_LIMITS)
    for (sobject, name) in STANDARD_LIMITS:
        describe = describes.get(sobject) or {}
        for info in describe.get("fields", ()):
            if info.get("name") == name and info.get("length"):
                limits[(sobject, name)] = int(info["length"])
    return limits


class Fitting:
    """``limits`` grouped by object, so fitting a record body looks at its fitted fields only."""

    def __init__(self, limits: Limits) -> None:
        by_object: dict[str, list[tuple[str, int]]] = {}
        for (sobject, name), limit in limits.items():
            by_object.setdefault(sobject, []).append((name, limit))
        self._fields = {sobject: tuple(fields) for sobject, fields in by_object.items()}

    def body(self, sobject: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body``, or a copy of it with each text too long for its field cut to it."""
        fitted = body
        for name, limit in self._fields.get(sobject, ()):
            value = body.get(name)
            if isinstance(value, str) and len(value) > limit:
                if fitted is body:
                    fitted = dict(body)
                fitted[name] = fit(value, limit)
        return fitted


STANDARD_FITTING = Fitting(STANDARD_LIMITS)


def _fitted(action: Action, limits: Limits) -> Action:
    fields = _ACTION_FIELDS.get(type(action))
    if not fields:
        return action
    # Nearly every text fits: the action itself then, not a copy (``replace`` is slow).
    long = {attr: fit(text, limits[target]) for attr, target in fields.items()
            if len(text := getattr(action, attr)) > limits[target]}
    return replace(action, **long) if long else action  # type: ignore[arg-type]


def fit_change(change: EventChange, limits: Limits = STANDARD_LIMITS) -> EventChange:
    """``change`` with every action's texts fitted to the fields they are written to."""
    actions = tuple(_fitted(a, limits) for a in change.actions)
    if all(new is old for new, old in zip(actions, change.actions, strict=True)):
        return change
    return replace(change, actions=actions)
