"""Each event's writes as one composite graph (one transaction, ledger first); many per API call.

A composite graph commits all of its nodes or none, and the graphs of one request succeed or
fail independently: exactly "each change atomic, one failure never affects another". The first
node of every graph creates the event's ledger record, whose ``Event_Id__c`` is a unique External
ID, so a redelivered or replayed event fails on DUPLICATE_VALUE and writes nothing a second time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from handlers.actions import (
    REVISION_MARKER_TYPE,
    Action,
    AddToCampaign,
    CreateCase,
    CreateTask,
    DraftEmail,
    EventChange,
    SavePlan,
    ScheduleCheckIn,
    SetCheckInStatus,
    revision_marker,
)
from handlers.errors import CrmRejectedError, CrmUnavailableError, PlanConflictError, WinbackError
from worker.crm import salesforce_records as sf
from worker.crm.fitting import STANDARD_FITTING, Fitting
from worker.crm.people import People, assign_owners
from worker.crm.port import Outgoing, outbox_json
from worker.crm.salesforce_errors import HALTED, classify, first_error

# Per request, Salesforce's composite graph limits ("Composite Graph Limits" in the REST API
# guide): graphs, nodes (of all graphs together), and different nodes (method x version x object).
MAX_GRAPHS, MAX_NODES, MAX_NODE_KINDS = 75, 500, 15
LEDGER_REF, REVISION_REF = "ledger", "revision"
_PLAIN = re.compile(r"[A-Za-z0-9_.~#-]*")  # characters ``quote`` keeps, and ``#``


@dataclass(frozen=True)
class Existing:
    """What is already in Salesforce: record keys, check-in Event ids by key, campaign members."""

    keys: frozenset[tuple[str, str]] = frozenset()
    event_ids: Mapping[str, str] = field(default_factory=dict)
    event_subjects: Mapping[str, str] = field(default_factory=dict)  # check-in key -> Subject
    members: frozenset[tuple[str, str]] = frozenset()  # (campaign id, contact id)
    people: People = field(default_factory=People)  # who may own the records


@dataclass(frozen=True)
class Graph:
    """The nodes of one change, and where its result goes in ``apply``'s answer."""

    index: int
    event_id: str
    nodes: tuple[dict[str, Any], ...]

    @property
    def graph_id(self) -> str:
        return f"e{self.index}"

    def payload(self) -> dict[str, Any]:
        return {"graphId": self.graph_id, "compositeRequest": list(self.nodes)}


class _Nodes:
    """Collects one change's nodes, skipping records whose key is already in Salesforce."""

    def __init__(self, data_path: str, existing: Existing, fitting: Fitting) -> None:
        self.items: list[dict[str, Any]] = []
        self._fitting = fitting
        self._objects = f"{data_path}/sobjects/"
        self._existing = existing
        self.people = existing.people
        self._created: set[tuple[str, str]] = set()  # (object, key) of this change's creates
        self._checkins: dict[str, dict[str, Any]] = {}

    def add(self, method: str, sobject: str, body: dict[str, Any], ref: str = "",
            tail: str = "") -> None:
        """A node writing ``body`` to ``sobject`` (``tail``: the record's path under it)."""
        self.items.append({"method": method, "url": self._objects + sobject + tail,
                           "referenceId": ref or f"n{len(self.items)}",
                           "body": self._fitting.body(sobject, body)})

    def create(self, sobject: str, body: dict[str, Any]) -> None:
        key = body[sf.KEY]
        if (sobject, key) in self._existing.keys or (sobject, key) in self._created:
            return  # written before, by this event's earlier delivery or another event
        self._created.add((sobject, key))
        self.add("POST", sobject, body)
        if sobject == "Event":
            self._checkins[key] = self.items[-1]["body"]  # the fitted body that is sent

    def member(self, body: dict[str, Any]) -> None:
        if (body.get("CampaignId"), body.get("ContactId")) not in self._existing.members:
            self.create("CampaignMember", body)  # else already in the campaign: nothing to add

    def set_status(self, key: str, action: SetCheckInStatus) -> None:
        if key in self._checkins:  # scheduled by this same change: create it with that status
            body = self._checkins[key]
            body.update(self._fitting.body("Event", sf.checkin_update(action, body.get("Subject"))))
        elif key in self._existing.event_ids:
            update = sf.checkin_update(action, self._existing.event_subjects.get(key))
            self.add("PATCH", "Event", update, tail=f"/{self._existing.event_ids[key]}")


def build_graph(index: int, change: EventChange, data_path: str, existing: Existing,
                fitting: Fitting = STANDARD_FITTING) -> Graph:
    """The graph of one change: its ledger record first, then its writes in order.

    Texts are fitted to the org's field lengths (``fitting``), so none is refused as too long.
    """
    nodes = _Nodes(data_path, existing, fitting)
    change = assign_owners(change, existing.people)
    kept = outbox_json([Outgoing.of(p) for p in change.publishes])  # the outbox: see port.Outgoing
    ledger = sf.ledger_body(change.event_id, change.event_type, change.account_id, kept)
    nodes.add("POST", sf.LEDGER, ledger, LEDGER_REF)
    for action in change.writes:
        _add_action(nodes, action)
    if len(nodes.items) > MAX_NODES:
        raise CrmRejectedError(
            f"event {change.event_id} writes {len(nodes.items)} records; one composite graph "
            f"holds at most {MAX_NODES}"
        )
    return Graph(index, change.event_id, tuple(nodes.items))


def _add_action(nodes: _Nodes, action: Action) -> None:
    if isinstance(action, SavePlan):
        plan = action.plan
        # Claiming the revision in the ledger makes a stale plan write fail, whole, on
        # DUPLICATE_VALUE instead of overwriting what another worker saved in between.
        marker = sf.ledger_body(revision_marker(plan), REVISION_MARKER_TYPE, plan.account_id)
        nodes.add("POST", sf.LEDGER, marker, REVISION_REF)
        key = _segment(plan.key)
        owner = nodes.people.usable(plan.owner_id)
        nodes.add("PATCH", sf.PLAN, sf.plan_body(plan, owner), tail=f"/{sf.PLAN_KEY}/{key}")
        for position, suppression in action.new_suppressions:
            nodes.create(sf.SUPPRESSION, sf.suppression_body(plan, position, suppression))
    elif isinstance(action, CreateTask):
        nodes.create("Task", sf.task_body(action))
    elif isinstance(action, DraftEmail):
        # The owner's review task comes from the rules (draft_apology), as in every CRM.
        nodes.create("EmailMessage", sf.draft_body(action))
    elif isinstance(action, ScheduleCheckIn):
        nodes.create("Event", sf.checkin_body(action))
    elif isinstance(action, SetCheckInStatus):
        for key in action.keys:
            nodes.set_status(key, action)
    elif isinstance(action, AddToCampaign):
        nodes.member(sf.member_body(action))
    elif isinstance(action, CreateCase):
        nodes.create("Case", sf.case_body(action))


def _segment(text: str) -> str:
    """``text`` quoted for a URL path segment (a plan key: an account id, ``#``, a number)."""
    if _PLAIN.fullmatch(text):
        return text.replace("#", "%23")  # what ``quote`` makes of it, at a tenth of the cost
    return quote(text, safe="")


def planned_keys(changes: Sequence[EventChange]) -> dict[str, dict[str, str]]:
    """What to look for before writing: per object, each record key and the id it hangs from.

    That is the account (WhatId, RelatedToId) for activities and drafts, the campaign for
    members; check-ins whose status changes are looked for too, to find their Event ids.
    """
    keys: dict[str, dict[str, str]] = {}
    for change in changes:
        for action in change.writes:
            for sobject, key, scope in _looked_for(action):
                keys.setdefault(sobject, {})[key] = scope
    return keys


def _looked_for(action: Action) -> list[tuple[str, str, str]]:
    if isinstance(action, CreateTask):
        return [("Task", action.key, action.account_id)]
    if isinstance(action, DraftEmail):
        return [("EmailMessage", action.key, action.account_id)]
    if isinstance(action, ScheduleCheckIn):
        return [("Event", action.key, action.account_id)]
    if isinstance(action, SetCheckInStatus):
        return [("Event", key, action.account_id) for key in action.keys]
    if isinstance(action, AddToCampaign):
        return [("CampaignMember", action.key, action.campaign_id)]
    if isinstance(action, SavePlan):  # by key alone: the plan's record id is not known here
        return [(sf.SUPPRESSION, sf.suppression_key(action.plan, n), "")
                for n, _ in action.new_suppressions]
    if isinstance(action, CreateCase):
        return [("Case", action.key, action.account_id)]
    return []


def pack(graphs: Sequence[Graph]) -> Iterator[list[Graph]]:
    """Fill each request up to Salesforce's limits: 75 graphs, 500 nodes, 15 node kinds."""
    batch: list[Graph] = []
    size = 0
    kinds: set[tuple[str, str, str]] = set()
    for graph in graphs:
        mine = node_kinds(graph.nodes)
        if batch and (len(batch) == MAX_GRAPHS or size + len(graph.nodes) > MAX_NODES
                      or len(kinds | mine) > MAX_NODE_KINDS):
            yield batch
            batch, size, kinds = [], 0, set()
        batch.append(graph)
        size += len(graph.nodes)
        kinds |= mine
    if batch:
        yield batch


def node_kinds(nodes: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """What Salesforce counts as different nodes: method, API version and object differ."""
    kinds = set()
    for node in nodes:
        version, _, rest = node["url"].partition("/sobjects/")
        kinds.add((node["method"], version, rest.split("/", 1)[0]))
    return kinds


def outcome(graph: Graph, reply: Mapping[str, Any] | None) -> WinbackError | None:
    """None when the graph committed (now or on an earlier delivery), else why it did not.

    A graph Salesforce did not get to (more than 14 failed graphs halt the rest of a request)
    comes back as a CrmUnavailableError, so it is simply sent again.
    """
    if reply is None:
        return CrmUnavailableError(f"Salesforce did not answer for event {graph.event_id}")
    if reply.get("isSuccessful"):
        return None
    for node in reply.get("graphResponse", {}).get("compositeResponse", ()):
        status = int(node.get("httpStatusCode", 400))
        code, _ = first_error(node.get("body"))
        if status < 400 or code == HALTED:
            continue
        if node.get("referenceId") == LEDGER_REF and code == "DUPLICATE_VALUE":
            return None  # the ledger already holds this event: it was applied before
        if node.get("referenceId") == REVISION_REF and code == "DUPLICATE_VALUE":
            return PlanConflictError(f"the plan changed in Salesforce since event {graph.event_id} "
                                     "was handled; it will be handled again on the new plan")
        return classify(status, node.get("body"), f"write for event {graph.event_id}")
    return CrmUnavailableError(f"Salesforce halted the write for event {graph.event_id}")
