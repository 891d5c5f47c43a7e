"""Owners that exist: the rules' owners looked up once at start-up, relations followed per batch."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from handlers.actions import EventChange
from handlers.rules.errors import ReferencesInvalidError
from tests.salesforce.changes import account_id, task
from tests.sfserver import SalesforceServer, jwt_settings
from tests.sfserver.server import USER_ID
from worker.cli import cli
from worker.crm.salesforce import SalesforceCrm
from worker.rules_cli import rules_group
from worker.rules_source import load_rules

CONFIG = Path(__file__).resolve().parents[2] / "config"
ANN, BOSS, GONE = "005000000000ANNAAA", "005000000000BOSAAA", "005000000000GONAAA"
QUEUE = "00G000000000QUEAAA"


def _people(server: SalesforceServer) -> None:
    server.org.seed("User", Id=BOSS, Username="boss@acme.com.test", IsActive=True)
    server.org.seed("User", Id=ANN, Username="ann@acme.com.test", IsActive=True, ManagerId=BOSS)
    server.org.seed("User", Id=GONE, Username="gone@acme.com.test", IsActive=False)
    server.org.seed("Group", Id=QUEUE, Name="Service managers", Type="Queue")
    server.org.seed("Account", Id=account_id(1), Name="Northwind", OwnerId=ANN)


def _rules(tmp_path: Path, **owners: str) -> Path:
    """config/rules.yaml with some owners replaced, beside a copy of the templates."""
    text = (CONFIG / "rules.yaml").read_text()
    for role, value in owners.items():
        text = re.sub(rf"(?m)^    {role}: \S+$", f"    {role}: {value}", text, count=1)
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    shutil.copytree(CONFIG / "templates", tmp_path / "templates", dirs_exist_ok=True)
    return path


def _line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_shipped_owners_need_no_edit_in_any_org(server: SalesforceServer,
                                                   crm: SalesforceCrm) -> None:
    rules = load_rules(CONFIG / "rules.yaml")
    assert crm.resolve_owners(rules).owner_ids == {}  # relations only: nothing to look up


def test_usernames_and_ids_are_resolved_in_one_call(tmp_path: Path, server: SalesforceServer,
                                                    crm: SalesforceCrm) -> None:
    _people(server)
    rules = load_rules(_rules(tmp_path, survey="ann@acme.com.test", feedback=BOSS))
    crm.check()
    before = server.api_calls
    resolved = crm.resolve_owners(rules)
    assert server.api_calls - before == 1
    assert dict(resolved.owner_ids) == {"survey": ANN, "feedback": BOSS}


@pytest.mark.parametrize(("value", "why"), [
    ("nobody@acme.com.test", "no user with this username in the org"),
    ("gone@acme.com.test", "the user is inactive"),
    (QUEUE, "a queue cannot own the tasks"),
    ("005000000000NOBAAA", "no such user in the org"),
    ("winback-survey-queue", "not a user id, a username or a relation"),
])
def test_an_owner_the_org_cannot_give_work_to_is_refused_at_its_line(
        tmp_path: Path, server: SalesforceServer, crm: SalesforceCrm, value: str, why: str) -> None:
    _people(server)
    path = _rules(tmp_path, survey=value)
    with pytest.raises(ReferencesInvalidError) as caught:
        crm.resolve_owners(load_rules(path))
    message = str(caught.value)
    assert "\n" not in message
    assert f"{path}:{_line(path, '    survey: ')}:1: settings.owners.survey ({value!r}): {why}" in message


def test_relations_follow_the_accounts_owner_and_the_owners_manager(
        server: SalesforceServer, crm: SalesforceCrm) -> None:
    _people(server)
    account = account_id(1)
    unowned = replace(task(account, "evt-1", "discovery"), owner_id=None, assign="account_owner")
    escalation = replace(task(account, "evt-1", "escalation"), owner_id=None,
                         assign="account_owner_manager")
    own_manager = replace(task(account, "evt-1", "feedback"), owner_id=BOSS,
                          assign="account_owner_manager")  # the boss has no manager
    change = EventChange("evt-1", "crm.complaint.logged", account, (unowned, escalation, own_manager))
    assert crm.apply([change]) == [None]
    owners = {row["Winback_Kind__c"]: row["OwnerId"] for row in server.records("Task")}
    assert owners == {"discovery": ANN, "escalation": BOSS, "feedback": USER_ID}


def test_an_inactive_owner_on_the_event_hands_the_work_to_the_accounts_owner(
        server: SalesforceServer, crm: SalesforceCrm) -> None:
    _people(server)
    left = replace(task(account_id(1), "evt-1"), owner_id=GONE)
    assert crm.apply([EventChange("evt-1", "crm.customer.lapsed", account_id(1), (left,))]) == [None]
    assert [row["OwnerId"] for row in server.records("Task")] == [ANN]


def _env(server: SalesforceServer, rules: Path) -> dict[str, str]:
    settings = jwt_settings(server)
    return {"WINBACK_CRM": "salesforce", "WINBACK_RULES": str(rules),
            "WINBACK_SALESFORCE_LOGIN_URL": str(settings.salesforce_login_url),
            "WINBACK_SALESFORCE_CLIENT_ID": server.app.client_id,
            "WINBACK_SALESFORCE_USERNAME": server.app.username,
            "WINBACK_SALESFORCE_PRIVATE_KEY_FILE": str(server.app.key_file),
            "WINBACK_SALESFORCE_CA_BUNDLE": str(server.ca_file),
            "WINBACK_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}


@pytest.mark.parametrize(("group", "command"), [
    (cli, ["run"]), (rules_group, ["check", "--crm", "salesforce"])], ids=["run", "rules-check"])
def test_a_queue_for_a_task_stops_start_up_and_rules_check_with_exit_2_and_one_line(
        tmp_path: Path, server: SalesforceServer, group: click.Group, command: list[str]) -> None:
    _people(server)
    path = _rules(tmp_path, managers=QUEUE)
    result = CliRunner().invoke(group, command, env=_env(server, path))
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if "settings.owners.managers" in x]
    assert len(lines) == 1, result.output
    (line,) = lines
    assert f"{path}:{_line(path, '    managers: ')}:1" in line
    assert "a queue cannot own the tasks" in line
