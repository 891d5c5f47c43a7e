"""Who an owner in ``settings.owners`` names: a user by id or username, or a relation to the account.

- an 18- (or 15-) character record id: a user (``005…``); a queue (``00G…``) cannot own the
  tasks, check-ins and drafts the rules write, so a CRM that knows refuses it at start-up;
- a username (``someone@acme.com``): resolved to the user's id once, when the rules are loaded;
- ``account_owner``: the event's ``owner_id``, else the plan's, else the account's owner as the CRM
  knows it; ``account_owner_manager``: that person's manager. Either falls back to the
  integration user (the worker's own user) when the CRM knows nobody.

- ``queue:<Queue Name>``: a queue (the queue's API name, ``Group.DeveloperName``), looked up at
  start-up with the objects it supports (``QueueSobject``). Salesforce lets a queue own Cases,
  never activities, so a queue can own only what ``open_case`` writes; anywhere else the rules
  are refused when they are loaded, and a queue that does not exist or takes no Cases stops
  start-up.

A relation needs no edit in any org, which is why the shipped rules use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ACCOUNT_OWNER = "account_owner"
ACCOUNT_OWNER_MANAGER = "account_owner_manager"
RELATIONS = (ACCOUNT_OWNER, ACCOUNT_OWNER_MANAGER)
Relation = Literal["account_owner", "account_owner_manager"]
OwnerKind = Literal["relation", "id", "username", "queue", "name"]
QUEUE_PREFIX = "queue:"
_RECORD_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")


def owner_kind(value: str) -> OwnerKind:
    """How ``value`` names its owner; ``name`` is free text only the embedded CRM accepts."""
    if value in RELATIONS:
        return "relation"
    if value.startswith(QUEUE_PREFIX):
        return "queue"
    # A record id always has digits (its key prefix and counter); a 15-letter word is a name.
    if _RECORD_ID.fullmatch(value) and any(c.isdigit() for c in value):
        return "id"
    return "username" if "@" in value else "name"


@dataclass(frozen=True)
class Assignee:
    """Who gets one record: ``owner_id`` when known, or the relation the CRM still has to follow.

    ``relation`` is set when only the CRM can tell (the account's owner, a manager); then
    ``owner_id`` is the account owner known so far, which is where a manager is looked up.
    """

    owner_id: str | None
    relation: Relation | None = None


@dataclass(frozen=True)
class Reference:
    """Something the rules name that must exist in the CRM: an owner or a campaign, and where."""

    kind: Literal["owner", "user", "campaign"]
    # The owner role (``managers``), or the rule whose action names the user or campaign.
    name: str
    value: str
    file: str
    line: int

    @property
    def what(self) -> str:
        if self.kind == "owner":
            return f"settings.owners.{self.name} ({self.value!r})"
        if self.kind == "user":
            return f"rule '{self.name}': owner user ({self.value!r})"
        return f"rule '{self.name}': campaign_id ({self.value!r})"

    @property
    def key(self) -> str:
        """Where ``RuleSet.owner_ids`` keeps what this names: the role, or ``user:<value>``."""
        return self.name if self.kind == "owner" else f"{self.kind}:{self.value}"
