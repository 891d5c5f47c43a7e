"""Team work to a queue, and owners written in an action, looked up at start-up like roles."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from handlers.rules.errors import ReferencesInvalidError
from tests.queue_example import rules_with_queue_example
from tests.salesforce.test_owners import _env, _line, _rules
from tests.sfserver import SalesforceServer
from tests.sfserver.cast import (
    ALICE,
    CASE_QUEUE,
    CASE_QUEUE_NAME,
    LEAD_QUEUE_NAME,
    OWNER,
)
from worker.cli import cli
from worker.crm.salesforce import SalesforceCrm
from worker.rules_cli import rules_group
from worker.rules_source import load_rules

GONE = "005000000000GONAAA"


def test_a_queue_that_takes_cases_is_resolved_to_its_id_in_the_one_call(
        tmp_path: Path, server: SalesforceServer, crm: SalesforceCrm) -> None:
    rules = load_rules(rules_with_queue_example(tmp_path, CASE_QUEUE_NAME))
    before = server.api_calls
    resolved = crm.resolve_owners(rules)
    assert server.api_calls - before == 1
    assert dict(resolved.owner_ids) == {"escalations": CASE_QUEUE}


@pytest.mark.parametrize(("queue", "why"), [
    ("Service_Escalations", "no queue with this Queue Name (API name) in the org"),
    (LEAD_QUEUE_NAME, "the queue does not take Cases: add Case to its Supported Objects"),
])
def test_a_queue_that_is_missing_or_takes_no_cases_is_refused_at_its_line(
        tmp_path: Path, crm: SalesforceCrm, queue: str, why: str) -> None:
    path = rules_with_queue_example(tmp_path, queue)
    with pytest.raises(ReferencesInvalidError) as caught:
        crm.resolve_owners(load_rules(path))
    message = str(caught.value)
    assert "\n" not in message
    line = _line(path, "    escalations: ")
    assert f"{path}:{line}:1: settings.owners.escalations ('queue:{queue}'): {why}" in message


@pytest.mark.parametrize(("group", "command"), [
    (cli, ["run"]), (rules_group, ["check", "--crm", "salesforce"])], ids=["run", "rules-check"])
def test_a_queue_without_cases_stops_start_up_and_rules_check_with_exit_2_and_one_line(
        tmp_path: Path, server: SalesforceServer, group: click.Group, command: list[str]) -> None:
    path = rules_with_queue_example(tmp_path, LEAD_QUEUE_NAME)
    result = CliRunner().invoke(group, command, env=_env(server, path))
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if "settings.owners.escalations" in x]
    assert len(lines) == 1, result.output
    assert f"{path}:{_line(path, '    escalations: ')}:1" in lines[0]
    assert "does not take Cases" in lines[0]


def _with_user(tmp_path: Path, user: str) -> Path:
    """The shipped rules with the feedback task given to ``{user: ...}`` in the action itself."""
    path = _rules(tmp_path)
    text = path.read_text()
    old = "          owner: {queue: feedback}\n"
    assert old in text
    path.write_text(text.replace(old, f"          owner: {{user: \"{user}\"}}\n"))
    return path


def test_a_user_written_in_an_action_is_resolved_at_start_up(
        tmp_path: Path, server: SalesforceServer, crm: SalesforceCrm) -> None:
    resolved = crm.resolve_owners(load_rules(_with_user(tmp_path, "alice@example.com.test")))
    assert dict(resolved.owner_ids) == {"user:alice@example.com.test": ALICE}
    assert dict(crm.resolve_owners(load_rules(_with_user(tmp_path, OWNER))).owner_ids) == {
        f"user:{OWNER}": OWNER}


@pytest.mark.parametrize(("user", "why"), [
    ("nobody@example.com.test", "no user with this username in the org"),
    (GONE, "the user is inactive"),
    ("005000000000NOBAAA", "no such user in the org"),
    (CASE_QUEUE, "a queue cannot own the tasks"),
    ("marketing-team", "an owner's user must be a user's Id (005…) or username"),
])
def test_a_user_in_an_action_the_org_cannot_give_work_to_is_refused_at_its_line(
        tmp_path: Path, server: SalesforceServer, crm: SalesforceCrm, user: str, why: str) -> None:
    server.org.seed("User", Id=GONE, Username="gone@example.com.test", IsActive=False)
    path = _with_user(tmp_path, user)
    with pytest.raises(ReferencesInvalidError) as caught:
        crm.resolve_owners(load_rules(path))
    message = str(caught.value)
    line = _line(path, f'owner: {{user: "{user}"}}')
    assert (f"{path}:{line}:1: rule 'feedback-to-marketing-and-product': owner user ({user!r}): "
            f"{why}") in message
