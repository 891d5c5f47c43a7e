"""The org's people and campaigns: owners the rules name checked at start-up, owners per batch.

At start-up (and with every rules reload) one composite call looks up every user, queue and
campaign the rules name (roles in ``settings.owners``, ``{user: …}`` in actions; a queue with the
objects it takes, ``QueueSobject``); each write batch looks up its accounts' owners and its
owners' managers in the key look-up call it already makes. See ``handlers.owners`` for what an owner can be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from simple_salesforce.format import format_soql

from handlers.actions import CreateCase, CreateTask, DraftEmail, EventChange, SavePlan, ScheduleCheckIn
from handlers.owners import QUEUE_PREFIX, Reference, owner_kind
from handlers.rules.errors import Problem
from worker.crm.people import People
from worker.crm.salesforce_records import is_salesforce_id

USER, QUEUE, CAMPAIGN = "005", "00G", "701"  # key prefixes
Rows = dict[str, list[dict[str, Any]]]
_NOT_ALLOWED = ("a queue cannot own the tasks, check-ins and drafts the rules write (Salesforce "
                "lets only users own activities): name a user or a relation such as "
                "account_owner_manager, or, for a Case (open_case), queue:<Queue Name>")


def reference_queries(references: Sequence[Reference]) -> dict[str, str]:
    """Users by username and by id, groups and campaigns by id, queues by name with the queues
    that take Cases: at most six queries, in the one composite call."""
    names = sorted({r.value for r in references if r.kind != "campaign"
                    and owner_kind(r.value) == "username"})
    ids = sorted({r.value for r in references if owner_kind(r.value) == "id"})
    users = [i for i in ids if i.startswith(USER)]
    groups = [i for i in ids if i.startswith(QUEUE)]
    campaigns = [i for i in ids if i.startswith(CAMPAIGN)]
    queues = sorted({queue_name(r.value) for r in references
                     if r.kind == "owner" and owner_kind(r.value) == "queue"})
    queries = {
        "usernames": format_soql("SELECT Id, Username, IsActive FROM User WHERE Username IN {}",
                                 names),
        "users": format_soql("SELECT Id, Username, IsActive FROM User WHERE Id IN {}", users),
        "groups": format_soql("SELECT Id, Type FROM Group WHERE Id IN {}", groups),
        "campaigns": format_soql("SELECT Id, IsActive FROM Campaign WHERE Id IN {}", campaigns),
        "queues": format_soql("SELECT Id, DeveloperName FROM Group WHERE Type = 'Queue' AND "
                              "DeveloperName IN {}", queues),
        # Which queues take Cases (a queue's Supported Objects); an org has few queues.
        "case_queues": format_soql("SELECT QueueId, SobjectType FROM QueueSobject WHERE "
                                   "SobjectType = {}", "Case"),
    }
    asked = {"usernames": names, "users": users, "groups": groups, "campaigns": campaigns,
             "queues": queues, "case_queues": queues}
    return {ref: soql for ref, soql in queries.items() if asked[ref]}


def queue_name(value: str) -> str:
    """The queue's API name (``Group.DeveloperName``) in ``queue:<name>``."""
    return value.removeprefix(QUEUE_PREFIX)


def _by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    # Salesforce answers with 18-character ids; the rules may hold the 15-character form.
    out = {}
    for row in rows:
        out[str(row[key])] = row
        if key == "Id":
            out[str(row[key])[:15]] = row
    return out


def resolve_references(references: Sequence[Reference], rows: Rows
                       ) -> tuple[dict[str, str], list[Problem]]:
    """Owner role -> user id for the rules' owners, and a problem for each reference that fails."""
    users = _by([*rows.get("users", ()), *rows.get("usernames", ())], "Id")
    by_name = _by(rows.get("usernames", ()), "Username")
    found = {"users": users, "usernames": by_name, "groups": _by(rows.get("groups", ()), "Id"),
             "campaigns": _by(rows.get("campaigns", ()), "Id"),
             "queues": _by(rows.get("queues", ()), "DeveloperName"),
             "case_queues": _by(rows.get("case_queues", ()), "QueueId")}
    owner_ids: dict[str, str] = {}
    problems = []
    for ref in references:
        owner_id, why = _check(ref, found)
        if why:
            problems.append(Problem(ref.file, ref.line, 1, f"{ref.what}: {why}"))
        elif owner_id:
            owner_ids[ref.key] = owner_id
    return owner_ids, problems


def _check(ref: Reference, found: Mapping[str, Mapping[str, dict[str, Any]]]
           ) -> tuple[str | None, str | None]:
    kind = owner_kind(ref.value)
    if ref.kind == "campaign":
        row = found["campaigns"].get(ref.value)
        if row is None:
            return None, "no such campaign in the org"
        return None, None if row.get("IsActive") else "the campaign is not active"
    if ref.kind == "user" and kind in ("relation", "queue", "name"):
        return None, ("an owner's user must be a user's Id (005…) or username; for a relation "
                      "or a queue, name a role of settings.owners with {queue: role}")
    if kind == "relation":
        return None, None
    if kind == "queue":
        return _queue(ref, found)
    if kind == "name":
        return None, ("not a user id, a username or a relation (account_owner, "
                      "account_owner_manager)")
    if kind == "id" and ref.value.startswith(QUEUE):
        return None, _NOT_ALLOWED if ref.value in found["groups"] else "no such queue in the org"
    row = (found["usernames"] if kind == "username" else found["users"]).get(ref.value)
    if row is None:
        return None, ("no user with this username in the org" if kind == "username"
                      else "no such user in the org (an owner must be a user id, 005…)")
    if not row.get("IsActive"):
        return None, "the user is inactive"
    return str(row["Id"]), None


def _queue(ref: Reference, found: Mapping[str, Mapping[str, dict[str, Any]]]
           ) -> tuple[str | None, str | None]:
    row = found["queues"].get(queue_name(ref.value))
    if row is None:
        return None, ("no queue with this Queue Name (API name) in the org; see Setup → Queues, "
                      "or name a user or a relation")
    if str(row["Id"]) not in found["case_queues"]:
        return None, ("the queue does not take Cases: add Case to its Supported Objects "
                      "(Setup → Queues), or name another queue")
    return str(row["Id"]), None


OWNED = (CreateTask, DraftEmail, ScheduleCheckIn, CreateCase)


def people_queries(changes: Sequence[EventChange], chunks: Callable[[Iterable[str]], Iterable[list[str]]],
                   unknown: Callable[[str], bool] = lambda user_id: True) -> dict[str, str]:
    """The accounts' owners and the named owners (active? manager?) of a wave's records; of the
    users, only those ``unknown`` says are not known already."""
    accounts = {c.account_id for c in changes if is_salesforce_id(c.account_id)}
    users = {u for u in named_owners(changes) if is_salesforce_id(u) and unknown(u)}
    queries = {f"people_accounts{n}": format_soql("SELECT Id, OwnerId FROM Account WHERE Id IN {}", g)
               for n, g in enumerate(chunks(accounts))}
    queries |= user_queries(users, chunks)
    return queries


def user_queries(users: Iterable[str], chunks: Callable[[Iterable[str]], Iterable[list[str]]]
                 ) -> dict[str, str]:
    return {f"people_users{n}": format_soql(
        "SELECT Id, ManagerId, IsActive FROM User WHERE Id IN {}", g)
        for n, g in enumerate(chunks(users))}


def named_owners(changes: Sequence[EventChange]) -> set[str]:
    named: set[str] = set()
    for change in changes:
        for action in change.writes:
            if isinstance(action, OWNED) and action.owner_id and not action.owner_id.startswith(QUEUE):
                named.add(action.owner_id)  # queues were looked up at start-up
            elif isinstance(action, SavePlan) and action.plan.owner_id:
                named.add(action.plan.owner_id)
    return named


def people_from(rows: Rows) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Account id -> owner id, and user id -> user row, from ``people_queries``' answers."""
    owners: dict[str, str] = {}
    users: dict[str, dict[str, Any]] = {}
    for ref, found in rows.items():
        for row in found:
            if ref.startswith("people_accounts") and row.get("OwnerId"):
                owners[str(row["Id"])] = str(row["OwnerId"])
            elif ref.startswith("people_users"):
                users[str(row["Id"])] = row
    return owners, users


def people(owners: Mapping[str, str], users: Mapping[str, dict[str, Any]]) -> People:
    active = frozenset(i[:15] for i, row in users.items() if row.get("IsActive"))
    managers = {i[:15]: str(row["ManagerId"]) for i, row in users.items() if row.get("ManagerId")}
    return People(account_owners=dict(owners), managers=managers, users=active)
