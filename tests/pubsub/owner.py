"""What an owner does in the test org by hand: edit a record, as one commit that CDC reports."""

from __future__ import annotations

from typing import Any

from tests.sfserver import SalesforceServer


def owner_edits(org: SalesforceServer, sobject: str, record_id: str, values: dict[str, Any]) -> None:
    """The owner (Winback_Owner permission set) edits ``record_id``. The test org models only the
    integration user, who may read these fields but not edit them, so this edits the row past the
    API's checks and reports the commit, as Salesforce's change data capture would."""
    with org.org.transaction() as tx:
        before = org.org.edit(sobject, record_id, values)
        tx.changes.append(("UPDATE", sobject, {**before, **values}, list(values)))
