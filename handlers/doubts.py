"""Optional event fields that do not validate: kept as the CRM sent them, and said so on the plan.

An optional field must never cost the customer a step: a complaint whose contact email is a
sandbox's masked ``dana@northwind.com.invalid`` is still acknowledged within the SLA. Required
fields stay strict (``handlers.events``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from email_validator import EmailNotValidError, validate_email

from handlers.events import EventData


def _email(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _currency(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Z]{3}", value) else "not an ISO 4217 code such as EUR"


_CHECKS: dict[str, Callable[[str], str | None]] = {"contact_email": _email, "currency": _currency}


def doubtful_fields(data: EventData) -> list[str]:
    """One note per optional field whose value does not validate, naming it and why."""
    notes = []
    for name, check in _CHECKS.items():
        value = getattr(data, name, None)
        why = check(value) if isinstance(value, str) and value else None
        if why:
            notes.append(f"{name} {value!r} kept as text: {why}")
    return notes
