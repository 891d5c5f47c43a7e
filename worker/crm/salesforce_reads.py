"""Batched reads: many SOQL queries in one composite call, every query built with ``format_soql``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from simple_salesforce.format import format_soql

from handlers.actions import AddToCampaign, EventChange
from handlers.errors import CrmRejectedError
from handlers.events import StepState
from handlers.figures import Acknowledgements
from handlers.plan import Plan
from worker.crm import salesforce_records as sf
from worker.crm.people import People
from worker.crm.port import Outgoing, Record, Snapshot, outbox_from_json
from worker.crm.salesforce_client import SalesforceClient
from worker.crm.salesforce_errors import classify
from worker.crm.salesforce_graph import Existing
from worker.crm.salesforce_known import Known, UserCache, known_from, known_queries
from worker.crm.salesforce_people import (
    named_owners,
    people,
    people_from,
    people_queries,
    user_queries,
)

MAX_SUBREQUESTS = 25  # per composite request
_MAX_VALUES, _MAX_CHARS = 200, 3000  # per IN list: keep each SOQL statement and URL short
_ACCOUNT_FIELD = {"Task": "WhatId", "Event": "WhatId", "EmailMessage": "RelatedToId",
                  "CampaignMember": "Winback_Account_Id__c", "Case": "AccountId",
                  sf.PLAN: "Account_Id__c"}
_SCOPE_FIELD = {"Task": "WhatId", "Event": "WhatId", "EmailMessage": "RelatedToId",
                "CampaignMember": "CampaignId", "Case": "AccountId"}
# What says whether a timer's step was done: a closed Task (any closed status), a held check-in.
_STATE_FIELDS = {"Task": ("IsClosed",), "Event": ("Winback_Status__c",)}
_READERS = {"Task": sf.task_record, "Event": sf.checkin_record, "EmailMessage": sf.draft_record,
            "CampaignMember": sf.member_record, "Case": sf.case_record, sf.PLAN: sf.plan_record}


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    """Sorted, distinct values in groups short enough for one SOQL ``IN`` list."""
    group: list[str] = []
    size = 0
    for value in sorted(set(values)):
        if group and (len(group) == _MAX_VALUES or size + len(value) + 3 > _MAX_CHARS):
            yield group
            group, size = [], 0
        group.append(value)
        size += len(value) + 3
    if group:
        yield group


def _select(sobject: str, fields: Sequence[str] | None = None) -> str:
    return format_soql("SELECT {:literal} FROM {:literal}", ", ".join(fields or sf.SELECTS[sobject]),
                       sobject)


class Reader:
    """Runs named SOQL queries, up to 25 per API call, and follows result pages."""

    def __init__(self, client: SalesforceClient, users: UserCache | None = None) -> None:
        self._client = client
        self._users = users or UserCache()

    def run(self, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        items = list(queries.items())
        for start in range(0, len(items), MAX_SUBREQUESTS):
            rows |= self._run_part(items[start:start + MAX_SUBREQUESTS])
        return rows

    def _run_part(self, items: list[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
        base = self._client.data_path
        body = {"allOrNone": False, "compositeRequest": [
            {"method": "GET", "url": f"{base}/query?{urlencode({'q': soql})}", "referenceId": ref}
            for ref, soql in items
        ]}
        reply = self._client.rest("POST", "composite", body, what="batched query")
        rows: dict[str, list[dict[str, Any]]] = {}
        for sub in reply["compositeResponse"]:
            ref, result = sub["referenceId"], sub["body"]
            if sub["httpStatusCode"] >= 300:
                raise classify(sub["httpStatusCode"], result, f"query {ref}")
            rows[ref] = list(result["records"])
            while not result.get("done", True):
                result = self._client.query_more(result["nextRecordsUrl"], f"query {ref}")
                rows[ref] += result["records"]
        return rows

    def snapshot(self, account_ids: Collection[str], event_ids: Collection[str]
                 ) -> tuple[Snapshot, Known]:
        """Latest plan per account, the already-applied event ids, and what the writes would look
        up about the accounts (``Known``): one call per 25 chunks."""
        queries = known_queries(account_ids, chunks)
        for n, group in enumerate(chunks(account_ids)):
            queries[f"plans{n}"] = format_soql(
                "{:literal} WHERE Account_Id__c IN {} ORDER BY Seq__c", _select(sf.PLAN), group
            )
        for n, group in enumerate(chunks(event_ids)):
            queries[f"ledger{n}"] = format_soql(
                "{:literal} WHERE Event_Id__c IN {}", _select(sf.LEDGER, (sf.LEDGER_KEY, sf.OUTBOX)), group
            )
        rows = self.run(queries)
        plans: dict[str, Plan] = {}
        processed: set[str] = set()
        outbox: dict[str, tuple[Outgoing, ...]] = {}
        for ref, found in rows.items():
            for row in found if ref.startswith("ledger") else ():
                processed.add(row[sf.LEDGER_KEY])
                if row.get(sf.OUTBOX):
                    outbox[row[sf.LEDGER_KEY]] = outbox_from_json(row[sf.OUTBOX])
            for row in found if ref.startswith("plans") else ():
                plan = _plan(row)
                if plan.account_id not in plans or plans[plan.account_id].seq < plan.seq:
                    plans[plan.account_id] = plan
        snapshot = Snapshot(plans=plans, processed=frozenset(processed), outbox=outbox)
        return snapshot, known_from(account_ids, rows)

    def existing(self, changes: Sequence[EventChange], wanted: dict[str, dict[str, str]],
                 known: Known | None = None) -> Existing:
        """What of the batch is already in Salesforce: record keys, check-ins, campaign members.

        Only what ``known`` (the batch's snapshot) does not cover is asked, often nothing."""
        known = known or Known()
        wanted = {sobject: {k: s for k, s in scopes.items() if not known.covers(sobject, s)}
                  for sobject, scopes in wanted.items()}
        uncovered = [c for c in changes if c.account_id not in known.accounts]
        unasked = {u for u in named_owners(changes) if sf.is_salesforce_id(u)
                   and not self._users.get([u])}
        # A cancelled check-in's subject is marked, so its Event's subject is read with its key.
        queries = (_key_queries(wanted, {"Event": ("Subject",)}) | _member_queries(changes)
                   | people_queries(uncovered, chunks, lambda user_id: False)  # their owners
                   | user_queries(unasked, chunks))
        rows = self.run(queries) if queries else {}
        keys: set[tuple[str, str]] = set(known.keys)
        event_ids: dict[str, str] = dict(known.event_ids)
        subjects: dict[str, str] = dict(known.subjects)
        members: set[tuple[str, str]] = set()
        for ref, found in rows.items():
            if ref.startswith("people_"):
                continue
            sobject = ref.rsplit("__", 1)[0]  # "Winback_Suppression__c__k0": custom names hold "__"
            keys.update((sobject, row[sf.KEY]) for row in found if row.get(sf.KEY))
            if sobject == "Event":
                event_ids.update((row[sf.KEY], row["Id"]) for row in found)
                subjects.update((row[sf.KEY], row["Subject"]) for row in found if row.get("Subject"))
            if ref.startswith("CampaignMember__m"):  # the key look-ups select no CampaignId
                members.update((row["CampaignId"], row["ContactId"]) for row in found)
        return Existing(frozenset(keys), event_ids, subjects, frozenset(members),
                        self._people(changes, rows, known))

    def _people(self, changes: Sequence[EventChange], rows: dict[str, list[dict[str, Any]]],
                known: Known) -> People:
        """The wave's people; account owners and managers not asked about yet are asked next.

        Users come from the ``UserCache`` where fresh; every user read goes into it."""
        owners, users = people_from(rows)
        self._users.put(users)
        owners = {a: o for a, o in known.owners.items()
                  if a in {c.account_id for c in changes}} | owners
        users = self._users.get(named_owners(changes)) | users
        for _ in range(2):  # the account owners, then their managers
            wanted = {*owners.values(), *(str(u["ManagerId"]) for u in users.values()
                                          if u.get("ManagerId"))}
            users |= self._users.get(i for i in wanted if i[:15] not in {u[:15] for u in users})
            seen = {i[:15] for i in users}
            unseen = {i for i in wanted if i[:15] not in seen and sf.is_salesforce_id(i)}
            if not unseen:
                break
            asked = people_from(self.run(user_queries(unseen, chunks)))[1]
            self._users.put(asked)
            users |= asked
        return people(owners, users)

    def step_states(self, keys: Mapping[str, str]) -> dict[str, StepState]:
        """Each task's ``IsClosed`` and each check-in's status by key (see ``Crm.step_states``)."""
        states: dict[str, StepState] = dict.fromkeys(keys, "missing")
        wanted = {"Task": keys, "Event": keys}
        rows = self.run(_key_queries(wanted, _STATE_FIELDS)) if keys else {}
        for ref, found in rows.items():
            for row in found:
                if ref.startswith("Task"):
                    states[row[sf.KEY]] = "done" if row.get("IsClosed") else "open"
                else:
                    states[row[sf.KEY]] = row.get("Winback_Status__c") or "pending"
        return states

    def acknowledgements(self) -> dict[str, Acknowledgements]:
        """Each plan's acknowledgement fields as stored, by plan key."""
        rows = self.run({"acks": _select(sf.PLAN, ("Id", sf.PLAN_KEY, *sf.ROLLUP_FIELDS))})
        return {row[sf.PLAN_KEY]: sf.acknowledgements_of(row) for row in rows["acks"]}

    def plan_ids(self, keys: Collection[str]) -> dict[str, str]:
        """The record id of each plan key that exists."""
        queries = {f"ids{n}": format_soql("{:literal} WHERE Plan_Key__c IN {}",
                                          _select(sf.PLAN, ("Id", sf.PLAN_KEY)), group)
                   for n, group in enumerate(chunks(keys))}
        rows = self.run(queries) if queries else {}
        return {row[sf.PLAN_KEY]: row["Id"] for found in rows.values() for row in found}

    def records(self, account_id: str | None) -> list[Record]:
        """Every record the worker wrote (optionally for one account), plans first."""
        queries = {}
        for sobject, account_field in _ACCOUNT_FIELD.items():
            key = sf.PLAN_KEY if sobject == sf.PLAN else sf.KEY
            queries[sobject] = format_soql(
                "{:literal} WHERE {:literal} != null ORDER BY CreatedDate, Id", _select(sobject), key
            ) if account_id is None else format_soql(
                "{:literal} WHERE {:literal} != null AND {:literal} = {} ORDER BY CreatedDate, Id",
                _select(sobject), key, account_field, account_id,
            )
        rows = self.run(queries)
        return [_READERS[sobject](row) for sobject, kind_rows in rows.items() for row in kind_rows]


def _key_queries(wanted: Mapping[str, Mapping[str, str]],
                 fields: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Key look-ups, scoped by the indexed parent id (WhatId...) since the key fields are not.

    Only well-formed ids go into a scope: Salesforce refuses the whole query for one malformed
    id, and records can hang only from real ids anyway. Keys with any other parent are looked
    up by key alone, so one bad id in one event never fails the batch.
    """
    queries: dict[str, str] = {}
    for sobject, scopes in wanted.items():
        select = _select(sobject, ("Id", sf.KEY, *(fields or {}).get(sobject, ())))
        scoped = [key for key, scope in scopes.items() if sf.is_salesforce_id(scope)]
        loose = [key for key, scope in scopes.items() if not sf.is_salesforce_id(scope)]
        for n, group in enumerate(chunks(scoped)):
            queries[f"{sobject}__s{n}"] = format_soql(
                "{:literal} WHERE {:literal} IN {} AND Winback_Key__c IN {}", select,
                _SCOPE_FIELD[sobject], sorted({scopes[key] for key in group}), group,
            )
        for n, group in enumerate(chunks(loose)):
            queries[f"{sobject}__k{n}"] = format_soql(
                "{:literal} WHERE Winback_Key__c IN {}", select, group
            )
    return queries


def _member_queries(changes: Sequence[EventChange]) -> dict[str, str]:
    # Salesforce allows a contact once per campaign, whoever added it and under whatever key.
    members = [a for c in changes for a in c.writes if isinstance(a, AddToCampaign)
               and sf.is_salesforce_id(a.contact_id) and sf.is_salesforce_id(a.campaign_id)]
    campaigns = sorted({a.campaign_id for a in members})
    fields = ("Id", sf.KEY, "CampaignId", "ContactId")
    return {
        f"CampaignMember__m{n}": format_soql(
            "{:literal} WHERE CampaignId IN {} AND ContactId IN {}",
            _select("CampaignMember", fields), campaigns, group,
        )
        for n, group in enumerate(chunks(a.contact_id for a in members if a.contact_id))
    }


def _plan(row: dict[str, Any]) -> Plan:
    try:
        plan = Plan.model_validate_json(row["State_Json__c"])
        # Owners pause a plan by ticking Paused__c; the worker's own state never overrides them.
        # A copy only when the two differ: nearly always they agree, and a copy costs.
        paused = bool(row.get("Paused__c"))
        return plan if plan.paused is paused else plan.model_copy(update={"paused": paused})
    except (ValueError, ValidationError) as exc:
        raise CrmRejectedError(f"Winback plan {row.get(sf.PLAN_KEY)} holds no valid state: {exc}") from exc
