"""The models of a rule's ``then``: one wrapper per action name and the spec each one carries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from handlers.rules.model_common import DEFAULT_OWNER, Duration, Owner, SettingRef, StrictModel
from handlers.rules.model_conditions import Condition

TaskKind = Literal["discovery", "prompt", "outreach", "acknowledgement", "note", "feedback",
                   "follow_up", "experience", "escalation", "offer", "survey", "review"]
Priority = Literal["low", "normal", "high"]


class TaskSpec(StrictModel):
    """create_task: a task for a person. Subject and description are Jinja2 templates."""

    kind: TaskKind
    subject: str
    description: str | None = None
    template: str | None = None  # a file under config/templates/ for the description
    owner: Owner = DEFAULT_OWNER
    due_in: Duration = Duration(days=3)
    priority: Priority = "normal"
    reminder: bool = False  # set a reminder at the due time (the complaint SLA)
    # One task per item of a list variable, e.g. ``added_experiences``; ``{{ item }}`` is the item.
    for_each: str | None = None
    # A timer: when ``within`` has passed and the task is not closed in the CRM, ``then`` runs.
    unless_done: UnlessDone | None = None


class Again(StrictModel):
    """A second round of a deadline's ``then``, ``after`` the first, when ``when`` holds."""

    after: Duration
    when: Condition | None = None


class UnlessDone(StrictModel):
    """unless_done on create_task: ``within`` from the event (``{sla: true}``: the complaint SLA),
    the task is looked up in the CRM; still open, ``then`` runs (escalate, create_task), once,
    and ``again`` once more."""

    within: Duration
    then: list[DeadlineAction] = Field(min_length=1)
    again: Again | None = None

    @field_validator("then")
    @classmethod
    def _no_nested_deadline(cls, then: list[DeadlineAction]) -> list[DeadlineAction]:
        for action in then:
            if isinstance(action, CreateTaskAction) and action.create_task.unless_done:
                raise ValueError("a task written by unless_done cannot have its own unless_done")
        return then


class UnlessHeld(StrictModel):
    """unless_held on schedule_checkins: ``within`` after the check-in's start, the check-in is
    looked up in the CRM; not held, ``then`` runs (a nudge for the owner), and after ``close_after``
    missed check-ins on the plan, it closes as lost with ``close_reason``."""

    within: Duration
    then: list[DeadlineAction] = Field(default_factory=list)
    close_after: int | SettingRef | None = None
    close_reason: str = ("{{ plan.missed_checkins }} check-in{{ '' if plan.missed_checkins == 1 else 's' }}"
                         " missed: moving on")


class ApologySpec(StrictModel):
    """draft_apology: an email draft for the owner to review, plus a review task."""

    template: str
    subject: str
    owner: Owner = DEFAULT_OWNER
    review_due_in: Duration = Duration(days=1)
    acknowledgement_subject: str = "{{ account_name }} complained again: acknowledge, no second apology"
    # The review task that goes with the draft, and the note written instead of a second apology.
    review_subject: str = "Review and send the apology draft to {{ account_name }}"
    review_description: str | None = None
    acknowledgement_description: str | None = None


class CheckInSpec(StrictModel):
    """schedule_checkins: the next check-in on the cadence (days after the plan opened)."""

    cadence_days: list[int] | SettingRef = SettingRef(setting="checkin_cadence_days")
    duration_minutes: int = Field(30, ge=5, le=480)
    subject: str = "Check-in with {{ account_name }}"
    description: str | None = None
    owner: Owner = DEFAULT_OWNER
    unless_held: UnlessHeld | None = None


class EscalateSpec(StrictModel):
    """escalate: a task for a manager or queue, e.g. by severity."""

    to: Owner
    subject: str
    description: str | None = None
    due_in: Duration = Duration(sla=True)
    priority: Priority = "high"


class SurveySpec(StrictModel):
    """add_to_survey: a survey task for a queue, and campaign membership when a campaign is set."""

    owner: Owner = Owner(queue="survey")
    campaign_id: str | None = None
    subject: str = "Survey {{ account_name }} about why they left"
    description: str | None = None
    template: str | None = None  # a file under config/templates/ for the description
    due_in: Duration = Duration(days=7)


class OfferSpec(StrictModel):
    """offer: make it easy to return with a named offer from ``settings.offers``."""

    offer: str
    owner: Owner = DEFAULT_OWNER
    subject: str = "Offer {{ account_name }} an easy way back: {{ offer.title }}"
    template: str | None = None
    due_in: Duration = Duration(days=5)


class CaseSpec(StrictModel):
    """open_case: a Case for a team, e.g. an escalation or product feedback. A Case, unlike a
    task, can be owned by a queue: ``owner: {queue: role}`` whose role in ``settings.owners`` is
    ``queue:<Queue Name>``; any user or relation an owner can be is fine too."""

    kind: Literal["escalation", "feedback", "complaint", "follow_up"] = "escalation"
    subject: str
    description: str | None = None
    template: str | None = None  # a file under config/templates/ for the description
    owner: Owner = DEFAULT_OWNER
    priority: Priority = "normal"


class ClosePlanSpec(StrictModel):
    """close_plan: won or lost, with a reason people read."""

    outcome: Literal["won", "lost"]
    reason: str
    follow_up: TaskSpec | None = None  # e.g. "keep it that way" when won


class PublishSpec(StrictModel):
    """publish_event: an event for other systems, e.g. ``winback.feedback``."""

    type: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    fields: dict[str, str] = Field(default_factory=dict)  # values are templates


class CreateTaskAction(StrictModel):
    create_task: TaskSpec


class DraftApologyAction(StrictModel):
    draft_apology: ApologySpec


class ScheduleCheckInsAction(StrictModel):
    schedule_checkins: CheckInSpec


class EscalateAction(StrictModel):
    escalate: EscalateSpec


class AddToSurveyAction(StrictModel):
    add_to_survey: SurveySpec


class OfferAction(StrictModel):
    offer: OfferSpec


class OpenCaseAction(StrictModel):
    open_case: CaseSpec


class ClosePlanAction(StrictModel):
    close_plan: ClosePlanSpec


class PublishEventAction(StrictModel):
    publish_event: PublishSpec


DeadlineAction = EscalateAction | CreateTaskAction
TaskSpec.model_rebuild()
UnlessDone.model_rebuild()
UnlessHeld.model_rebuild()
CheckInSpec.model_rebuild()

ActionSpec = (
    CreateTaskAction | DraftApologyAction | ScheduleCheckInsAction | EscalateAction
    | AddToSurveyAction | OfferAction | OpenCaseAction | ClosePlanAction | PublishEventAction
)
ACTION_NAMES = ("create_task", "draft_apology", "schedule_checkins", "escalate", "add_to_survey",
                "offer", "open_case", "close_plan", "publish_event")
# The only action whose record a queue can own (Salesforce: queues own Cases, never activities).
QUEUE_ACTIONS = frozenset({"open_case"})


def action_name(action: ActionSpec) -> str:
    """The YAML key of an action, e.g. ``create_task``."""
    return next(iter(type(action).model_fields))
