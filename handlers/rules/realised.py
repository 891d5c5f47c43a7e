"""What ``handlers.realise`` makes of a spec, as the checks must know it: which fields are
templates, which variables each text is rendered with, and where ``for_each`` is honoured.

Kept together so a change to the realisers has one place to be mirrored in the checks.
"""

from __future__ import annotations

from pydantic import BaseModel

from handlers.context import TextKind
from handlers.rules.errors import Path
from handlers.rules.model import (
    ApologySpec,
    CheckInSpec,
    EscalateSpec,
    OfferSpec,
    SurveySpec,
    TaskSpec,
)


def is_inline_template(field_name: str) -> bool:
    """Spec fields the handlers render as Jinja2 (``subject``, ``review_description``, ``reason``)."""
    return field_name.endswith(("subject", "description")) or field_name == "reason"


def ignored_for_each(path: Path, spec: TaskSpec) -> tuple[str, str] | None:
    """Why ``spec`` (at ``path``) makes one task whatever its ``for_each``, and what to do; or None.

    The realiser makes one task per item only for a ``create_task`` that is neither the discovery
    (once per plan) nor a ``close_plan`` follow-up (once, when the plan closes).
    """
    if path and path[-1] == "follow_up":
        return ("a close_plan follow_up: one follow-up task is written when the plan closes",
                "remove it")
    if getattr(spec, "kind", None) == "discovery":  # a salvaged spec may lack its kind
        return ("a discovery task: one discovery is written per plan",
                "remove it, or give the task another kind for one task per item")
    return None


def text_kind(path: Path, spec: BaseModel, field_name: str) -> TextKind:
    """What ``handlers.realise`` renders ``field_name`` of ``spec`` (at ``path``) with."""
    if isinstance(spec, OfferSpec):
        return "offer_task"
    if isinstance(spec, CheckInSpec):
        return "check_in"
    if isinstance(spec, ApologySpec):  # the draft itself, then its review task and note
        return "message" if field_name in ("template", "subject") else "task"
    if isinstance(spec, TaskSpec):
        per_item = getattr(spec, "for_each", None) is not None and ignored_for_each(path, spec) is None
        return "task_per_item" if per_item else "task"
    return "task" if isinstance(spec, EscalateSpec | SurveySpec) else "message"
