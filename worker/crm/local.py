"""The embedded CRM: plans, tasks, drafts and check-ins in one SQLite file, idempotent by key."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handlers.actions import (
    REVISION_MARKER_TYPE,
    Action,
    AddToCampaign,
    CreateCase,
    CreateTask,
    DraftEmail,
    EventChange,
    PublishEvent,
    SavePlan,
    ScheduleCheckIn,
    SetCheckInStatus,
    revision_marker,
)
from handlers.errors import CrmRejectedError, CrmUnavailableError, PlanConflictError, WinbackError
from handlers.events import StepState
from handlers.figures import Acknowledgements
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet
from worker.crm.fitting import STANDARD_LIMITS, fit, fit_change
from worker.crm.json_text import fast_json
from worker.crm.people import People, assign_owners
from worker.crm.port import Outgoing, Record, RecordKind, Snapshot, outbox_from_json, outbox_json
from worker.crm.records import (
    campaign_fields,
    case_fields,
    checkin_fields,
    checkin_update,
    draft_fields,
    iso,
    task_fields,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    key TEXT PRIMARY KEY, account_id TEXT NOT NULL, seq INTEGER NOT NULL,
    stage TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (account_id, seq));
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, account_id TEXT NOT NULL, fields TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS records_by_account ON records (account_id, kind);
CREATE TABLE IF NOT EXISTS acknowledgements (
    plan_key TEXT PRIMARY KEY, acknowledged_at TEXT, in_sla INTEGER NOT NULL,
    late INTEGER NOT NULL, pending INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, account_id TEXT NOT NULL,
    applied_at TEXT NOT NULL, outbox TEXT);
"""
LEDGER_INSERT = (
    "INSERT OR IGNORE INTO ledger (event_id, event_type, account_id, applied_at, outbox) "
    "VALUES (?, ?, ?, ?, ?)"
)
PLAN_UPSERT = (
    "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
    "stage = excluded.stage, state = excluded.state, updated_at = excluded.updated_at"
)
RECORD_INSERT = "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?)"
# Each record action: its kind, and its adapter-neutral fields (``worker.crm.records``).
_RECORDS: dict[type, tuple[RecordKind, Callable[[Any], dict[str, Any]]]] = {
    CreateTask: ("task", task_fields), DraftEmail: ("email_draft", draft_fields),
    ScheduleCheckIn: ("checkin", checkin_fields), AddToCampaign: ("campaign_member", campaign_fields),
    CreateCase: ("case", case_fields),
}


class LocalCrm:
    """SQLite adapter of the CRM port. One batch is one transaction; a refused event leaves the
    others written (see ``_transaction``)."""

    name = "local"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # The worker's processing thread owns the adapter; the lock guards CLI/test use from others.
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._upgrade()
        except sqlite3.Error as exc:
            raise CrmUnavailableError(f"cannot open local CRM {self.path}: {exc}") from exc

    def _upgrade(self) -> None:
        """Bring a file made by an earlier version up to this schema (columns only ever added)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(ledger)")}
        if "outbox" not in columns:
            self._db.execute("ALTER TABLE ledger ADD COLUMN outbox TEXT")

    def check(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1 FROM plans LIMIT 1").fetchall()

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        with self._lock, self._errors("read"):
            plans: dict[str, Plan] = {}
            accounts = sorted(set(account_ids))
            for chunk in _chunks(accounts, 500):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT p.state FROM plans p JOIN (SELECT account_id, MAX(seq) AS seq FROM plans "  # noqa: S608 - placeholders only
                    f"WHERE account_id IN ({marks}) GROUP BY account_id) m "
                    "ON p.account_id = m.account_id AND p.seq = m.seq",
                    chunk,
                )
                for (state,) in rows:
                    plan = Plan.model_validate_json(state)
                    plans[plan.account_id] = plan
            processed: set[str] = set()
            outbox: dict[str, tuple[Outgoing, ...]] = {}
            for chunk in _chunks(sorted(set(event_ids)), 500):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT event_id, outbox FROM ledger WHERE event_id IN ({marks})", chunk  # noqa: S608
                )
                for event_id, kept in rows:
                    processed.add(event_id)
                    if kept:
                        outbox[event_id] = outbox_from_json(kept)
            return Snapshot(plans=plans, processed=frozenset(processed), outbox=outbox)

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        now = _now_text()  # one transaction, one moment
        with self._lock, self._errors("write"):
            if self._batch(changes, now):
                return [None] * len(changes)
            # A change was refused: again, each change in its own savepoint.
            return self._transaction(changes, now)

    def _batch(self, changes: Sequence[EventChange], now: str) -> bool:
        """Write ``changes`` in one transaction, one statement per table (``_Rows``); False, all
        rolled back, when a change is refused.

        Savepoints cost SQLite more than the writes they guard (a statement journal per event),
        and a refusal (a plan conflict, a broken constraint) is rare: so a batch is first
        written without them, and only a batch with a refused change is written again by
        ``_transaction``, with one savepoint per change, which keeps the others'."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = _Rows(self, now, self._applied(changes))
            for change in changes:
                rows.add(change)
            rows.flush()
        except (PlanConflictError, sqlite3.IntegrityError):
            self._db.execute("ROLLBACK")
            return False
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return True

    def _applied(self, changes: Sequence[EventChange]) -> set[str]:
        """The events of ``changes`` already in the ledger: applied before, written again never."""
        found: set[str] = set()
        for chunk in _chunks(sorted({c.event_id for c in changes}), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT event_id FROM ledger WHERE event_id IN ({marks})", chunk)  # noqa: S608
            found.update(event_id for (event_id,) in rows)
        return found

    def _transaction(self, changes: Sequence[EventChange], now: str) -> list[WinbackError | None]:
        """Apply ``changes`` in one transaction, each in its own savepoint: a refused change
        leaves the others written."""
        results: list[WinbackError | None] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            results = [self._apply_one(change, now) for change in changes]
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return results

    def resolve_owners(self, rules: RuleSet) -> RuleSet:
        """Any owner text will do: the embedded CRM has no users to look up (see handlers.owners)."""
        return rules

    def _apply_one(self, change: EventChange, now: str) -> WinbackError | None:
        change = _fitted(change)
        self._db.execute("SAVEPOINT change")
        try:
            kept = outbox_json([Outgoing.of(p) for p in change.publishes])
            inserted = self._db.execute(
                LEDGER_INSERT, (change.event_id, change.event_type, change.account_id, now, kept)
            ).rowcount
            if inserted:  # an event already in the ledger was applied before: write nothing again
                for action in change.writes:
                    self._write(action, now)
        except PlanConflictError as exc:
            return self._undo(exc)
        except sqlite3.IntegrityError as exc:
            return self._undo(CrmRejectedError(f"local CRM refused event {change.event_id}: {exc}"))
        self._db.execute("RELEASE change")
        return None

    def _undo(self, error: WinbackError) -> WinbackError:
        self._db.execute("ROLLBACK TO change")
        self._db.execute("RELEASE change")
        return error

    def _write(self, action: Action, now: str) -> None:
        if isinstance(action, SavePlan):
            marker, plan = _plan_rows(action, now)
            if not self._db.execute(LEDGER_INSERT, marker).rowcount:
                raise _conflict(action)
            self._db.execute(PLAN_UPSERT, plan)
        elif isinstance(action, SetCheckInStatus):
            self.set_status(action)
        elif isinstance(action, PublishEvent):
            return
        else:
            self._db.execute(RECORD_INSERT, _record_row(action, now))

    def set_status(self, action: SetCheckInStatus) -> None:
        """Each check-in ``action`` names, as the Salesforce adapter changes its Event."""
        for key in action.keys:
            row = self._db.execute(
                "SELECT fields FROM records WHERE kind = 'checkin' AND key = ?", (key,)
            ).fetchone()
            if row:
                fields = checkin_update(json.loads(row[0]), action)
                fields["subject"] = fit(fields["subject"], STANDARD_LIMITS[("Event", "Subject")])
                self._db.execute(
                    "UPDATE records SET fields = ? WHERE kind = 'checkin' AND key = ?",
                    (fields_json(fields), key),
                )

    def complete_task(self, key: str, at: datetime) -> None:
        """Mark task ``key`` done at ``at``, as its owner would in a CRM (the demo and tests)."""
        with self._lock, self._errors("write"):
            row = self._db.execute(
                "SELECT fields FROM records WHERE kind = 'task' AND key = ?", (key,)).fetchone()
            if row is None:
                raise CrmRejectedError(f"local CRM has no task {key!r}")
            fields = json.loads(row[0]) | {"status": "done", "completed_at": iso(at)}
            self._db.execute("UPDATE records SET fields = ? WHERE kind = 'task' AND key = ?",
                             (json.dumps(fields), key))

    def records(self, account_id: str | None = None) -> list[Record]:
        with self._lock, self._errors("read"):
            where, args = ("WHERE account_id = ?", (account_id,)) if account_id else ("", ())
            plans = self._db.execute(
                f"SELECT key, account_id, state FROM plans {where} ORDER BY account_id, seq", args  # noqa: S608
            ).fetchall()
            rows = self._db.execute(
                f"SELECT kind, key, account_id, fields FROM records {where} "  # noqa: S608
                "ORDER BY account_id, rowid", args,
            ).fetchall()
        out = [Record("plan", k, a, json.loads(s)) for k, a, s in plans]
        out += [Record(kind, k, a, json.loads(f)) for kind, k, a, f in rows]
        return out

    def step_states(self, keys: Mapping[str, str]) -> dict[str, StepState]:
        states: dict[str, StepState] = dict.fromkeys(keys, "missing")
        with self._lock, self._errors("read"):
            for chunk in _chunks(sorted(keys), 500):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, fields FROM records WHERE kind IN ('task', 'checkin') "  # noqa: S608
                    f"AND key IN ({marks})", chunk,
                )
                for key, fields in rows:
                    states[key] = json.loads(fields)["status"]
        return states

    def acknowledgements(self) -> dict[str, Acknowledgements]:
        with self._lock, self._errors("read"):
            rows = self._db.execute("SELECT plan_key, acknowledged_at, in_sla, late, pending "
                                    "FROM acknowledgements").fetchall()
        return {key: Acknowledgements(datetime.fromisoformat(at) if at else None, met, late, waiting)
                for key, at, met, late, waiting in rows}

    def write_acknowledgements(self, values: Mapping[str, Acknowledgements]) -> None:
        rows = [(key, iso(a.acknowledged_at), a.in_sla, a.late, a.pending)
                for key, a in sorted(values.items())]
        with self._lock, self._errors("write"):
            self._db.executemany(
                "INSERT INTO acknowledgements VALUES (?, ?, ?, ?, ?) ON CONFLICT(plan_key) DO UPDATE "
                "SET acknowledged_at = excluded.acknowledged_at, in_sla = excluded.in_sla, "
                "late = excluded.late, pending = excluded.pending", rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # locked, disk I/O, full disk: may pass
            raise CrmUnavailableError(f"local CRM {what} failed: {exc}") from exc


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _now_text() -> str:
    return iso(datetime.now(UTC)) or ""


class _Rows:
    """A batch's rows per table, in the order the changes make them, each table's written with
    one ``executemany``: the same rows, in the same order, as one ``_write`` per action.

    A check-in's status is read from its record, so what is collected is written before it. A
    revision already claimed, or a broken constraint, raises: the batch is then written again
    change by change (``LocalCrm._transaction``), which tells whose change it was."""

    def __init__(self, crm: LocalCrm, now: str, applied: set[str]) -> None:
        self._crm, self._now = crm, now
        self._applied = applied  # events in the ledger, or earlier in this batch: skipped
        self._ledger: list[tuple[str, str, str, str, str | None]] = []
        self._plans: list[tuple[str, str, int, str, str, str]] = []
        self._records: list[tuple[str, str, str, str, str]] = []

    def add(self, change: EventChange) -> None:
        if change.event_id in self._applied:
            return
        self._applied.add(change.event_id)
        change = _fitted(change)
        kept = outbox_json([Outgoing.of(p) for p in change.publishes])
        self._ledger.append((change.event_id, change.event_type, change.account_id, self._now, kept))
        for action in change.writes:
            if isinstance(action, SavePlan):
                marker, plan = _plan_rows(action, self._now)
                self._ledger.append(marker)
                self._plans.append(plan)
            elif isinstance(action, SetCheckInStatus):
                self.flush()
                self._crm.set_status(action)
            elif not isinstance(action, PublishEvent):
                self._records.append(_record_row(action, self._now))

    def flush(self) -> None:
        db = self._crm._db
        if self._ledger and db.executemany(LEDGER_INSERT, self._ledger).rowcount != len(self._ledger):
            raise PlanConflictError("a revision this batch claims is taken")  # found per change next
        db.executemany(PLAN_UPSERT, self._plans)
        db.executemany(RECORD_INSERT, self._records)
        self._ledger, self._plans, self._records = [], [], []


_NOBODY = People()  # no users, accounts or managers here: a relation with nobody is the worker


def _fitted(change: EventChange) -> EventChange:
    return fit_change(assign_owners(change, _NOBODY))  # Salesforce's lengths, here too


def _plan_rows(action: SavePlan, now: str) -> tuple[tuple[str, str, str, str, None],
                                                     tuple[str, str, int, str, str, str]]:
    """The revision claim in the ledger, and the plan's row."""
    plan = action.plan
    marker = (revision_marker(plan), REVISION_MARKER_TYPE, plan.account_id, now, None)
    return marker, (plan.key, plan.account_id, plan.seq, plan.stage, plan.model_dump_json(), now)


def _conflict(action: SavePlan) -> PlanConflictError:
    plan = action.plan
    return PlanConflictError(f"plan {plan.key} was saved by another worker since it was read "
                             f"(revision {plan.revision} is taken)")


def _record_row(action: CreateTask | DraftEmail | ScheduleCheckIn | AddToCampaign | CreateCase,
                now: str) -> tuple[str, str, str, str, str]:
    kind, fields_of = _RECORDS[type(action)]
    return (kind, action.key, action.account_id, fields_json(fields_of(action)), now)


def fields_json(fields: dict[str, Any]) -> str:
    """A record's fields as stored: compact JSON by orjson, or as ``json.dumps`` wrote them where
    orjson would write otherwise (a NaN, a lone surrogate: see ``json_text``)."""
    fast = fast_json(fields)
    return fast.decode() if fast is not None else json.dumps(fields)
