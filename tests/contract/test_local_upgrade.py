"""The embedded CRM opens a file an earlier version made, and keeps what it held."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from worker.crm.local import LocalCrm

# The ledger as the first release made it: no outbox column.
FIRST_RELEASE_LEDGER = """
CREATE TABLE ledger (
    event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, account_id TEXT NOT NULL,
    applied_at TEXT NOT NULL);
INSERT INTO ledger VALUES ('evt-old', 'crm.customer.lapsed', 'ACC-1', '2026-11-01T10:00:00Z');
"""


def test_a_ledger_without_the_outbox_column_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_RELEASE_LEDGER)
    crm = LocalCrm(path)
    try:
        snapshot = crm.load([], ["evt-old"])
        assert snapshot.processed == frozenset({"evt-old"})
        assert snapshot.outbox == {}
    finally:
        crm.close()
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(ledger)")]
    assert columns == ["event_id", "event_type", "account_id", "applied_at", "outbox"]
