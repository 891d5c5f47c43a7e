"""The Salesforce adapter of the CRM port: batched, idempotent and atomic per event.

Reads go out as composite calls of up to 25 SOQL queries; writes as composite graphs, one graph
(one transaction, ledger record first) per event, up to 75 graphs and 500 nodes per call. The
batch's snapshot also reads what its writes would look up (``salesforce_known``): it is kept per
lane thread, from ``load`` to the batch's ``apply`` calls. See
``docs/salesforce.md`` for what is written where and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any

import structlog
from pydantic import SecretStr

from handlers.actions import EventChange
from handlers.errors import (
    ConfigError,
    CrmAccessError,
    PermanentError,
    TransientError,
    WinbackError,
)
from handlers.events import StepState
from handlers.figures import Acknowledgements
from handlers.rules.errors import ReferencesInvalidError
from handlers.rules.ruleset import RuleSet
from worker.crm import salesforce_records as sf
from worker.crm.fitting import STANDARD_FITTING, Fitting, limits_from
from worker.crm.port import Record, Snapshot
from worker.crm.salesforce_auth import Credentials, FixedToken, JwtBearer, Token
from worker.crm.salesforce_client import SalesforceClient, http_session
from worker.crm.salesforce_errors import CertificateRefusedError, classify
from worker.crm.salesforce_graph import Graph, build_graph, outcome, pack, planned_keys
from worker.crm.salesforce_known import Known
from worker.crm.salesforce_limits import ApiAllowance
from worker.crm.salesforce_people import reference_queries, resolve_references
from worker.crm.salesforce_reads import MAX_SUBREQUESTS, Reader
from worker.crm.salesforce_retry import RetryPolicy, resendable
from worker.crm.salesforce_schema import HINT, NEEDS, problems
from worker.settings import Settings

GRAPH_SINCE = 50.0  # the first REST API version with /composite/graph


class SalesforceCrm:
    """Plans, tasks, drafts and check-ins in a Salesforce org (see the module docstring)."""

    name = "salesforce"

    def __init__(self, client: SalesforceClient, retry: RetryPolicy) -> None:
        self.client = client
        self._retry = retry
        self._reader = Reader(client)
        self._known = threading.local()  # the Known of this lane's latest snapshot
        self._fitting = STANDARD_FITTING  # the org's own lengths once ``check`` has described it
        self._log = structlog.get_logger("winback.salesforce")

    @classmethod
    def from_settings(
        cls, settings: Settings, retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> SalesforceCrm:
        """Build the adapter from settings; nothing is sent until the first call."""
        if float(settings.salesforce_api_version) < GRAPH_SINCE:
            raise ConfigError(f"WINBACK_SALESFORCE_API_VERSION: the adapter writes through "
                              f"composite graphs, which need v{GRAPH_SINCE} or later")
        bundle = settings.salesforce_ca_bundle
        if bundle is not None and not bundle.is_file():
            raise ConfigError(f"WINBACK_SALESFORCE_CA_BUNDLE: no such file: {bundle}")
        allowance = ApiAllowance(settings.salesforce_api_floor, sleep=sleep)
        # A connection kept open per lane: a smaller pool would close and reopen the surplus.
        http = http_session(settings.salesforce_timeout, bundle, allowance,
                            connections=settings.crm_concurrency)
        client = SalesforceClient(
            _credentials(settings), http, settings.salesforce_api_version, allowance
        )
        return cls(client, retry or RetryPolicy(sleep=sleep))

    def check(self) -> None:
        """Log in, then describe every object the worker writes; name each gap found."""
        try:
            describes = self._retry.call(self._describe)
        except (CrmAccessError, CertificateRefusedError) as exc:
            raise ConfigError(str(exc)) from exc  # credentials or CA bundle: waiting will not help
        except TransientError:
            raise  # down or rate-limited for now: the worker waits and asks again
        except WinbackError as exc:
            raise ConfigError(f"Salesforce start-up check failed: {exc}") from exc
        found = problems(describes)
        if found:
            raise ConfigError("the Salesforce org is not ready: " + "; ".join(found) + f". {HINT}")
        self._fitting = Fitting(limits_from(describes))
        self._log.info("salesforce_checked", api_remaining=self.client.allowance.remaining)

    def _describe(self) -> dict[str, dict[str, Any] | None]:
        base = self.client.data_path
        body = {"allOrNone": False, "compositeRequest": [
            {"method": "GET", "url": f"{base}/sobjects/{n.object}/describe", "referenceId": n.object}
            for n in NEEDS
        ]}
        reply = self.client.rest("POST", "composite", body, what="describe")
        describes: dict[str, dict[str, Any] | None] = {}
        for sub in reply["compositeResponse"]:
            status, ref = sub["httpStatusCode"], sub["referenceId"]
            if status in (403, 404):
                describes[ref] = None
            elif status >= 300:
                raise classify(status, sub["body"], f"describe {ref}")
            else:
                describes[ref] = sub["body"]
        return describes

    def resolve_owners(self, rules: RuleSet) -> RuleSet:
        """Look up every owner and campaign the rules name, in one call; refuse what is wrong."""
        queries = reference_queries(rules.references)
        try:
            rows = self._retry.call(lambda: self._reader.run(queries)) if queries else {}
        except PermanentError as exc:
            raise ConfigError(f"looking up the owners and campaigns the rules name: {exc}") from exc
        owner_ids, found = resolve_references(rules.references, rows)
        if found:
            raise ReferencesInvalidError(found)
        self._log.info("owners_resolved", owners=len(owner_ids), rules_version=rules.version)
        return rules.with_owner_ids(owner_ids)

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        self._known.value = None
        if not account_ids and not event_ids:
            return Snapshot()
        snapshot, known = self._retry.call(lambda: self._reader.snapshot(account_ids, event_ids))
        self._known.value = known
        return snapshot

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        """Write each change as its own graph; one result per change, in order."""
        results: list[WinbackError | None] = [None] * len(changes)
        for wave in _waves(changes):
            self._apply_wave(changes, wave, results)
        return results

    def _apply_wave(
        self, changes: Sequence[EventChange], wave: list[int], results: list[WinbackError | None]
    ) -> None:
        chosen = [changes[i] for i in wave]
        known: Known | None = getattr(self._known, "value", None)
        try:
            existing = self._retry.call(
                lambda: self._reader.existing(chosen, planned_keys(chosen), known)
            )
        except WinbackError as exc:
            for index in wave:
                results[index] = exc
            return
        graphs = []
        for index in wave:
            try:
                graphs.append(build_graph(index, changes[index], self.client.data_path, existing,
                                          self._fitting))
            except PermanentError as exc:
                results[index] = exc
        _GraphWriter(self.client, results, known).write(graphs, self._retry)

    def records(self, account_id: str | None = None) -> list[Record]:
        found = self._retry.call(lambda: self._reader.records(account_id))
        plans = sorted((r for r in found if r.kind == "plan"),
                       key=lambda r: (r.account_id, r.fields["seq"]))
        # Other records keep Salesforce's creation order within each account.
        others = sorted((r for r in found if r.kind != "plan"), key=lambda r: r.account_id)
        return plans + others

    def acknowledgements(self) -> dict[str, Acknowledgements]:
        return self._retry.call(self._reader.acknowledgements)

    def write_acknowledgements(self, values: Mapping[str, Acknowledgements]) -> None:
        """Update each plan's acknowledgement fields by record id, 25 plans per composite call;
        a plan deleted since it was read is skipped, any other refusal is raised at the end."""
        ids = self._retry.call(lambda: self._reader.plan_ids(list(values)))
        items = [(ids[key], acks) for key, acks in sorted(values.items()) if key in ids]
        refused: list[WinbackError] = []
        for start in range(0, len(items), MAX_SUBREQUESTS):
            part = items[start:start + MAX_SUBREQUESTS]
            refused += self._retry.call(partial(self._update_plans, part))
        if refused:
            raise refused[0]

    def _update_plans(self, items: Sequence[tuple[str, Acknowledgements]]) -> list[WinbackError]:
        base = self.client.data_path
        body = {"allOrNone": False, "compositeRequest": [
            {"method": "PATCH", "url": f"{base}/sobjects/{sf.PLAN}/{record_id}",
             "referenceId": f"p{n}", "body": sf.acknowledgement_body(acks)}
            for n, (record_id, acks) in enumerate(items)
        ]}
        reply = self.client.rest("POST", "composite", body, what="acknowledgement fields")
        return [classify(sub["httpStatusCode"], sub["body"], "acknowledgement fields")
                for sub in reply["compositeResponse"] if sub["httpStatusCode"] >= 300]

    def api_allowance(self) -> tuple[int | None, int]:
        return self.client.allowance.remaining, self.client.allowance.floor

    def step_states(self, keys: Mapping[str, str]) -> dict[str, StepState]:
        return self._retry.call(lambda: self._reader.step_states(keys))

    def close(self) -> None:
        self.client.close()


class _GraphWriter:
    """Sends graphs in rounds: each round re-sends only the graphs that failed transiently.

    A plan conflict is settled at once: the graph claims a revision another worker took, so a
    resend can never succeed; the event goes back to be handled again on the newer plan."""

    def __init__(self, client: SalesforceClient, results: list[WinbackError | None],
                 known: Known | None = None) -> None:
        self._client = client
        self._results = results
        self._known = known  # learns what each committed graph created
        self._pending: dict[str, Graph] = {}
        self._last: dict[str, WinbackError] = {}

    def write(self, graphs: Sequence[Graph], retry: RetryPolicy) -> None:
        self._pending = {g.graph_id: g for g in graphs}
        if self._pending:
            retry.rounds(self._round)
        for graph_id, graph in self._pending.items():
            self._results[graph.index] = self._last[graph_id]

    def _round(self) -> int:
        for batch in pack(list(self._pending.values())):
            self._send(batch)
        return len(self._pending)

    def _send(self, batch: list[Graph]) -> None:
        try:
            reply = self._client.rest("POST", "composite/graph",
                                      {"graphs": [g.payload() for g in batch]}, what="write")
        except (PermanentError, CrmAccessError) as exc:
            for graph in batch:
                self._settle(graph, exc)
            return
        except TransientError as exc:
            self._last.update((g.graph_id, exc) for g in batch)
            return
        answers = {item.get("graphId"): item for item in reply.get("graphs", ())}
        for graph in batch:
            answer = answers.get(graph.graph_id)
            result = outcome(graph, answer)
            if result is None and self._known is not None and answer is not None:
                self._known.learn(graph.nodes, answer.get("graphResponse", {})
                                  .get("compositeResponse", ()))
            if resendable(result):
                self._last[graph.graph_id] = result
            else:
                self._settle(graph, result)

    def _settle(self, graph: Graph, result: WinbackError | None) -> None:
        self._results[graph.index] = result
        self._pending.pop(graph.graph_id, None)


def _waves(changes: Sequence[EventChange]) -> list[list[int]]:
    """Split a batch so each wave has at most one change per account, in the original order.

    Later changes of an account may cancel check-ins or update plans an earlier one wrote; one
    wave is written (and looked up) before the next, so those writes see each other.
    """
    waves: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, change in enumerate(changes):
        depth = seen.get(change.account_id, 0)
        seen[change.account_id] = depth + 1
        if depth == len(waves):
            waves.append([])
        waves[depth].append(index)
    return waves


def _credentials(settings: Settings) -> Credentials:
    key_file = settings.salesforce_private_key_file
    if settings.salesforce_client_id and settings.salesforce_username and key_file:
        try:
            key = key_file.read_text()
        except OSError as exc:
            raise ConfigError(f"WINBACK_SALESFORCE_PRIVATE_KEY_FILE: {exc}") from exc
        return JwtBearer(
            str(settings.salesforce_login_url), settings.salesforce_client_id,
            settings.salesforce_username, SecretStr(key),
        )
    if settings.salesforce_instance_url and settings.salesforce_access_token:
        return FixedToken(Token(settings.salesforce_access_token, str(settings.salesforce_instance_url)))
    raise ConfigError(
        "Salesforce needs WINBACK_SALESFORCE_CLIENT_ID, _USERNAME and _PRIVATE_KEY_FILE (JWT "
        "bearer flow) or WINBACK_SALESFORCE_INSTANCE_URL and _ACCESS_TOKEN"
    )
