"""What a batch's snapshot already tells the writes, so most batches need no key look-up call.

The snapshot call (``Reader.snapshot``) also reads, for each account of the batch that is a
well-formed id, the keys of the activities and drafts the worker wrote for it, check-in Event
ids, and the account's owner: ``Known``. The writes of that batch then look up only what
``Known`` does not cover (keys of accounts that are not ids, campaign members, users not in the
``UserCache``), and none at all when it covers everything. After each write, ``Known`` learns
what the committed graphs created, so the batch's next wave sees its first wave's records.

Why this is safe: every write of an account claims the next revision of its plan (see
``salesforce_graph``), so a record another worker created for the account after the snapshot
comes with a revision claim that makes this batch's write fail whole, as a plan conflict, and
the event is handled again on a fresh snapshot. ``Known`` never outlives one lane's batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.format import format_soql

from worker.crm import salesforce_records as sf

# The objects whose records hang from the account (their scope field), looked up by account.
ACCOUNT_SCOPED = {"Task": "WhatId", "Event": "WhatId", "EmailMessage": "RelatedToId"}
USER_TTL = 60.0  # seconds a user's active flag and manager are reused before being asked again
Chunks = Callable[[Iterable[str]], Iterator[list[str]]]


@dataclass
class Known:
    """Records, check-in Event ids and owners of the ``accounts`` one snapshot read."""

    accounts: frozenset[str] = frozenset()
    keys: set[tuple[str, str]] = field(default_factory=set)  # (sobject, Winback key)
    event_ids: dict[str, str] = field(default_factory=dict)  # check-in key -> Event id
    subjects: dict[str, str] = field(default_factory=dict)  # check-in key -> Event Subject
    owners: dict[str, str] = field(default_factory=dict)  # account id -> owner's user id

    def covers(self, sobject: str, scope: str) -> bool:
        """Whether a key of ``sobject`` hanging from ``scope`` would be in ``keys`` if it existed."""
        return sobject in ACCOUNT_SCOPED and scope in self.accounts

    def learn(self, nodes: Iterable[Mapping[str, Any]], replies: Iterable[Mapping[str, Any]]) -> None:
        """A committed graph's created records (its nodes and Salesforce's answer to each)."""
        answers = {r.get("referenceId"): r.get("body") for r in replies}
        for node in nodes:
            body = node.get("body") or {}
            key = body.get(sf.KEY)
            if node.get("method") != "POST" or not key:
                continue
            sobject = node["url"].rsplit("/", 1)[-1]
            self.keys.add((sobject, key))
            answer = answers.get(node.get("referenceId"))
            if sobject == "Event" and isinstance(answer, Mapping) and answer.get("id"):
                self.event_ids[key] = str(answer["id"])
                if body.get("Subject"):
                    self.subjects[key] = str(body["Subject"])


def known_queries(accounts: Collection[str], chunks: Chunks) -> dict[str, str]:
    """The snapshot's extra queries: worker-written keys and the owner of each id-shaped account."""
    ids = [a for a in accounts if sf.is_salesforce_id(a)]
    queries: dict[str, str] = {}
    for n, group in enumerate(chunks(ids)):
        for sobject, scope in ACCOUNT_SCOPED.items():
            # A cancelled check-in's subject is marked, so an Event's subject comes with its key.
            fields = f"Id, {sf.KEY}, Subject" if sobject == "Event" else f"Id, {sf.KEY}"
            queries[f"known_{sobject}{n}"] = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE {:literal} IN {} AND {:literal} != null",
                fields, sobject, scope, group, sf.KEY,
            )
        queries[f"known_owners{n}"] = format_soql("SELECT Id, OwnerId FROM Account WHERE Id IN {}",
                                                  group)
    return queries


def known_from(accounts: Collection[str], rows: Mapping[str, list[dict[str, Any]]]) -> Known:
    known = Known(frozenset(a for a in accounts if sf.is_salesforce_id(a)))
    for ref, found in rows.items():
        if not ref.startswith("known_"):
            continue
        if ref.startswith("known_owners"):
            known.owners.update((str(r["Id"]), str(r["OwnerId"])) for r in found if r.get("OwnerId"))
            continue
        sobject = ref.removeprefix("known_").rstrip("0123456789")
        known.keys.update((sobject, r[sf.KEY]) for r in found if r.get(sf.KEY))
        if sobject == "Event":
            known.event_ids.update((r[sf.KEY], str(r["Id"])) for r in found if r.get(sf.KEY))
            known.subjects.update((r[sf.KEY], str(r["Subject"])) for r in found
                                  if r.get(sf.KEY) and r.get("Subject"))
    return known


class UserCache:
    """Users (active? manager?) as last read, reused for ``ttl`` seconds; shared by the lanes.

    A user deactivated within the ttl may still be given a record; Salesforce then refuses that
    write and the event is retried after the entry has expired."""

    def __init__(self, ttl: float = USER_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._rows: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The fresh rows among ``ids`` (by 15-character id)."""
        now = self._clock()
        with self._lock:
            found = {}
            for user_id in ids:
                entry = self._rows.get(user_id[:15])
                if entry is not None and now - entry[0] < self._ttl:
                    found[user_id] = entry[1]
            return found

    def put(self, rows: Mapping[str, dict[str, Any]]) -> None:
        now = self._clock()
        with self._lock:
            for user_id, row in rows.items():
                self._rows[user_id[:15]] = (now, row)
            if len(self._rows) > 10_000:  # an org has fewer owners than this; never grow unbounded
                self._rows = {k: v for k, v in self._rows.items() if now - v[0] < self._ttl}
