"""Who each record goes to: the owners a handler named, checked against the people the CRM knows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from handlers.actions import Action, CreateCase, CreateTask, DraftEmail, EventChange, ScheduleCheckIn
from handlers.owners import ACCOUNT_OWNER_MANAGER, QUEUE_PREFIX

Assignable = TypeVar("Assignable", CreateTask, DraftEmail, ScheduleCheckIn, CreateCase)
# A queue's id (Salesforce) or ``queue:<name>`` (the embedded CRM): checked at start-up.
QUEUE_IDS = ("00G", QUEUE_PREFIX)


@dataclass(frozen=True)
class People:
    """What the CRM knows about a batch's people; the embedded CRM knows nobody (``users`` None).

    ``users`` are the active users among those asked about: an owner outside it (a malformed id,
    someone who left) is not written, and the work goes to the account's owner instead, or to the
    integration user when that is unknown too. Salesforce would refuse the write otherwise.
    """

    account_owners: Mapping[str, str] = field(default_factory=dict)  # account id -> user id
    managers: Mapping[str, str] = field(default_factory=dict)  # user id -> manager's user id
    users: frozenset[str] | None = None

    def usable(self, user_id: str | None) -> str | None:
        # Ids compare by their first 15 characters: the 18-character form only adds a checksum.
        if user_id is None or self.users is None or user_id[:15] in self.users:
            return user_id
        return None

    def owner(self, action: CreateTask | DraftEmail | ScheduleCheckIn | CreateCase) -> str | None:
        if isinstance(action, CreateCase) and (action.owner_id or "").startswith(QUEUE_IDS):
            return action.owner_id  # a queue that takes Cases, looked up at start-up
        owner = self.usable(action.owner_id) or self.usable(self.account_owners.get(action.account_id))
        if action.assign == ACCOUNT_OWNER_MANAGER:
            return self.usable(self.managers.get(owner[:15])) if owner else None
        return owner


def _assigned(action: Action, people: People) -> Action:
    if isinstance(action, CreateTask | DraftEmail | ScheduleCheckIn | CreateCase):
        owner = people.owner(action)
        if owner == action.owner_id and action.assign is None:
            return action  # already so: no copy (``replace`` costs more than the rest here)
        return replace(action, owner_id=owner, assign=None)
    return action


def assign_owners(change: EventChange, people: People) -> EventChange:
    """``change`` with every owner a person the CRM has (or None: the integration user)."""
    actions = tuple(_assigned(a, people) for a in change.actions)
    if all(new is old for new, old in zip(actions, change.actions, strict=True)):
        return change
    return replace(change, actions=actions)
