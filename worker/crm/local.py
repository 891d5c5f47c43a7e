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
            results = self._transaction(changes, now, isolated=False)
            if any(results):  # a change was refused: again, each change in its own savepoint
                results = self._transaction(changes, now, isolated=True)
        return results

    def _transaction(self, changes: Sequence[EventChange], now: str,
                     isolated: bool) -> list[WinbackError | None]:
        """Apply ``changes`` in one transaction; not ``isolated``, the first refused change rolls
        it all back (its error is then the last result).

        Savepoints cost SQLite more than the writes they guard (a statement journal per event),
        and a refusal (a plan conflict, a broken constraint) is rare: so a batch is first
        written without them, and only a batch with a refused change is written again with one
        savepoint per change, which keeps the others'."""
        results: list[WinbackError | None] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for change in changes:
                results.append(self._apply_one(change, now, isolated))
                if results[-1] is not None and not isolated:
                    self._db.execute("ROLLBACK")
                    return results
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return results

    def resolve_owners(self, rules: RuleSet) -> RuleSet:
        """Any owner text will do: the embedded CRM has no users to look up (see handlers.owners)."""
        return rules

    def _apply_one(self, change: EventChange, now: str, isolated: bool) -> WinbackError | None:
        # No users, accounts or managers here: a relation with nobody known is the worker itself.
        change = fit_change(assign_owners(change, People()))  # Salesforce's lengths, here too
        if isolated:
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
            return self._undo(exc, isolated)
        except sqlite3.IntegrityError as exc:
            error = CrmRejectedError(f"local CRM refused event {change.event_id}: {exc}")
            return self._undo(error, isolated)
        if isolated:
            self._db.execute("RELEASE change")
        return None

    def _undo(self, error: WinbackError, isolated: bool) -> WinbackError:
        if isolated:  # else the whole transaction is rolled back
            self._db.execute("ROLLBACK TO change")
            self._db.execute("RELEASE change")
        return error

    def _write(self, action: Action, now: str) -> None:
        if isinstance(action, SavePlan):
            plan = action.plan
            claimed = self._db.execute(
                LEDGER_INSERT, (revision_marker(plan), REVISION_MARKER_TYPE, plan.account_id, now, None)
            ).rowcount
            if not claimed:
                raise PlanConflictError(
                    f"plan {plan.key} was saved by another worker since it was read "
                    f"(revision {plan.revision} is taken)")
            self._db.execute(
                "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "stage = excluded.stage, state = excluded.state, updated_at = excluded.updated_at",
                (plan.key, plan.account_id, plan.seq, plan.stage, plan.model_dump_json(), now),
            )
        elif isinstance(action, SetCheckInStatus):
            for key in action.keys:
                row = self._db.execute(
                    "SELECT fields FROM records WHERE kind = 'checkin' AND key = ?", (key,)
                ).fetchone()
                if row:
                    fields = checkin_update(json.loads(row[0]), action)
                    fields["subject"] = fit(fields["subject"], STANDARD_LIMITS[("Event", "Subject")])
                    self._db.execute(
                        "UPDATE records SET fields = ? WHERE kind = 'checkin' AND key = ?",
                        (json.dumps(fields), key),
                    )
        elif isinstance(action, PublishEvent):
            return
        else:
            kind, fields_of = _RECORDS[type(action)]
            self._db.execute(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?)",
                (kind, action.key, action.account_id, json.dumps(fields_of(action)), now),
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
