"""Every CRM adapter, empty and ready, for the suites that must pass on each of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from tests.sfserver import SalesforceServer, cast, salesforce_crm
from worker.crm.local import LocalCrm
from worker.crm.port import Crm

ADAPTERS = ("local", "salesforce")
# A user the Salesforce org has (the embedded CRM takes any owner): records assigned to it are
# kept as they are by both adapters.
OWNER_ID = cast.OWNER
# The test org behind each open Salesforce adapter, so a test can act as a person in it.
_SERVERS: dict[int, SalesforceServer] = {}


@contextmanager
def open_crm(kind: str, tmp_path: Path) -> Iterator[Crm]:
    """The embedded CRM in a fresh file, or the Salesforce adapter on a fresh HTTPS test org."""
    if kind == "salesforce":
        with salesforce_crm(tmp_path) as (server, adapter):  # the org holds the cast
            _SERVERS[id(adapter)] = server
            try:
                yield adapter
            finally:
                del _SERVERS[id(adapter)]
        return
    local = LocalCrm(tmp_path / "crm.sqlite3")
    try:
        yield local
    finally:
        local.close()


def complete_task(crm: Crm, key: str, at: datetime) -> None:
    """Close task ``key`` at ``at`` the way its owner would, in whichever CRM ``crm`` writes to."""
    if isinstance(crm, LocalCrm):
        crm.complete_task(key, at)
    else:
        _SERVERS[id(crm)].org.complete_task(key, at)


def cli_env(crm: Crm) -> dict[str, str]:
    """The environment under which ``winback`` commands read the CRM that ``crm`` writes to."""
    if isinstance(crm, LocalCrm):
        return {"WINBACK_CRM": "local", "WINBACK_LOCAL_CRM_PATH": crm.path}
    server = _SERVERS[id(crm)]
    return {"WINBACK_CRM": "salesforce", "WINBACK_SALESFORCE_INSTANCE_URL": server.url,
            "WINBACK_SALESFORCE_ACCESS_TOKEN": server.issue_token(),
            "WINBACK_SALESFORCE_CA_BUNDLE": str(server.ca_file),
            "WINBACK_SALESFORCE_API_VERSION": server.api_version}


def salesforce_rows(crm: Crm, sobject: str) -> list[dict[str, object]] | None:
    """The rows the test org holds for ``sobject``; None for the embedded CRM."""
    server = _SERVERS.get(id(crm))
    return server.records(sobject) if server else None
