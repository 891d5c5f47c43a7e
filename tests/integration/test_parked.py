"""``winback parked`` against the real broker: list, replay, purge, and a replay killed half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
from click.testing import CliRunner

from handlers.errors import RuleError
from handlers.events import Event
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.rules.ruleset import RuleSet
from tests.integration.broker import (
    Names,
    channel,
    message_count,
    publish,
    take_all,
    take_all_work,
    work_count,
)
from tests.integration.harness import lapsed, make_consumer, make_settings, one_task, running
from tests.waiting import wait_until
from worker.cli import _register_groups, cli
from worker.settings import Settings

ROOT = Path(__file__).parents[2]
_register_groups()


class FixableHandler:
    """Refuses accounts in ``broken`` with a RuleError (so they are parked) until fixed."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken

    def __call__(self, event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
        if event.account_id in self.broken:
            raise RuleError(f"template offer-{event.account_id} is missing")
        return one_task(event, plan, rules, now)


def _env(names: Names, tmp_path: Path) -> dict[str, str]:
    env = {f"WINBACK_{k.upper()}": str(v) for k, v in names.settings.items()}
    return env | {"WINBACK_LOCAL_CRM_PATH": str(tmp_path / "crm.sqlite3")}


def _winback(names: Names, tmp_path: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=_env(names, tmp_path), input=stdin)


def _park_through_the_worker(names: Names, tmp_path: Path) -> Settings:
    """Three parked by the real consumer (two RuleError, one invalid), one handled."""
    settings = make_settings(names, tmp_path)
    consumer, _, _ = make_consumer(settings, handle=FixableHandler({"ACC-1", "ACC-2"}))
    with running(consumer):
        wait_until(consumer.is_consuming, what="consumer to start")
        publish(names, lapsed("evt-1", "ACC-1"))
        publish(names, lapsed("evt-2", "ACC-2"))
        invalid = lapsed("evt-bad", "ACC-3")
        del invalid["data"]["account_name"]
        publish(names, invalid)
        publish(names, lapsed("evt-ok", "ACC-4"))
        wait_until(lambda: message_count(settings.parking_queue) == 3, what="three parked")
    return settings


def _listed(names: Names, tmp_path: Path, *filters: str) -> list[dict[str, Any]]:
    result = _winback(names, tmp_path, "parked", "list", "--format", "json", *filters)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_list_shows_why_each_message_was_parked_and_removes_nothing(names: Names, tmp_path: Path) -> None:
    settings = _park_through_the_worker(names, tmp_path)
    rows = {row["id"]: row for row in _listed(names, tmp_path)}
    assert rows.keys() == {"evt-1", "evt-2", "evt-bad"}
    assert rows["evt-1"]["error"] == "RuleError"
    assert rows["evt-1"]["reason"] == "template offer-ACC-1 is missing"
    assert rows["evt-1"]["account"] == "ACC-1"
    assert rows["evt-1"]["type"] == "crm.customer.lapsed"
    assert rows["evt-bad"]["error"] == "InvalidEventError"
    assert "data.account_name: Field required" in rows["evt-bad"]["reason"]
    parked_at = datetime.fromisoformat(rows["evt-1"]["parked_at"])
    assert abs(datetime.now(UTC) - parked_at) < timedelta(minutes=5)
    assert message_count(settings.parking_queue) == 3
    table = _winback(names, tmp_path, "parked", "list")
    assert table.exit_code == 0, table.output
    assert "3 parked message(s)" in table.output
    assert "RuleError" in table.output


def test_list_filters_by_reason_type_account_and_age(names: Names, tmp_path: Path) -> None:
    _park_through_the_worker(names, tmp_path)
    assert {r["id"] for r in _listed(names, tmp_path, "--reason", "ruleerror")} == {"evt-1", "evt-2"}
    assert {r["id"] for r in _listed(names, tmp_path, "--reason", "field required")} == {"evt-bad"}
    assert {r["id"] for r in _listed(names, tmp_path, "--account", "ACC-2")} == {"evt-2"}
    assert len(_listed(names, tmp_path, "--type", "customer.lapsed")) == 3
    assert _listed(names, tmp_path, "--type", "crm.meeting.held") == []
    assert _listed(names, tmp_path, "--older-than", "1h") == []
    assert len(_listed(names, tmp_path, "--newer-than", "1h")) == 3
    bad_age = _winback(names, tmp_path, "parked", "list", "--older-than", "soon")
    assert bad_age.exit_code == 2
    assert "not a duration like 90s" in bad_age.output


def test_replay_after_the_fix_is_handled_and_the_invalid_one_is_refused_with_why(
    names: Names, tmp_path: Path
) -> None:
    settings = _park_through_the_worker(names, tmp_path)
    refused = _winback(names, tmp_path, "parked", "replay", "--all")
    assert refused.exit_code == 1
    assert "refused evt-bad: still invalid: invalid crm.customer.lapsed: data.account_name" in refused.output
    assert "replayed 2, refused 1" in refused.output
    assert [r["id"] for r in _listed(names, tmp_path)] == ["evt-bad"]
    replayed = take_all_work(settings)
    assert sorted(json.loads(body)["id"] for _, _, body in replayed) == ["evt-1", "evt-2"]
    for routing_key, headers, _ in replayed:
        assert routing_key == "crm.customer.lapsed"
        assert headers["x-winback-replayed-by"]
        assert datetime.fromisoformat(headers["x-winback-replayed-at"]) <= datetime.now(UTC)
        assert "x-winback-attempts" not in headers, "a replay starts with its full retry allowance"
        assert "x-winback-reason" not in headers


def test_fixed_then_replayed_messages_are_written_by_the_worker(names: Names, tmp_path: Path) -> None:
    settings = _park_through_the_worker(names, tmp_path)
    consumer, crm, _ = make_consumer(settings, handle=FixableHandler(set()))
    with running(consumer):
        wait_until(consumer.is_consuming, what="consumer to start")
        result = _winback(names, tmp_path, "parked", "replay", "--reason", "RuleError")
        assert result.exit_code == 0, result.output
        assert "replayed 2, refused 0" in result.output
        wait_until(lambda: {"ACC-1:task:evt-1", "ACC-2:task:evt-2"}
                   <= {r.key for r in crm.records()}, what="the replayed events written")
    assert [r["id"] for r in _listed(names, tmp_path)] == ["evt-bad"]


def test_replay_by_id_with_dry_run_and_limit(names: Names, tmp_path: Path) -> None:
    settings = _park_through_the_worker(names, tmp_path)
    dry = _winback(names, tmp_path, "parked", "replay", "--id", "evt-2", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would replay evt-2 (crm.customer.lapsed, ACC-2)" in dry.output
    assert work_count(settings) == 0
    assert len(_listed(names, tmp_path)) == 3
    one = _winback(names, tmp_path, "parked", "replay", "--reason", "RuleError", "--limit", "1")
    assert "replayed 1, refused 0" in one.output
    assert len(_listed(names, tmp_path)) == 2
    nothing_said = _winback(names, tmp_path, "parked", "replay")
    assert nothing_said.exit_code == 2
    assert "--all" in nothing_said.output


def test_purge_asks_first_and_deletes_only_the_selection(names: Names, tmp_path: Path) -> None:
    _park_through_the_worker(names, tmp_path)
    declined = _winback(names, tmp_path, "parked", "purge", "--reason", "invalid", stdin="n\n")
    assert "nothing deleted" in declined.output
    assert len(_listed(names, tmp_path)) == 3
    agreed = _winback(names, tmp_path, "parked", "purge", "--reason", "invalid", stdin="y\n")
    assert "purged 1" in agreed.output, agreed.output
    assert {r["id"] for r in _listed(names, tmp_path)} == {"evt-1", "evt-2"}
    forced = _winback(names, tmp_path, "parked", "purge", "--all", "--yes")
    assert "purged 2" in forced.output
    assert _listed(names, tmp_path) == []


def test_replay_killed_half_way_loses_nothing(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    count = 3000  # more lines than the stdout pipe holds: the replay blocks on it until killed
    with channel() as ch:
        ch.confirm_delivery()  # each one on the broker before the replay starts
        for n in range(count):
            headers = {"x-winback-error": "RuleError", "x-winback-reason": "template missing",
                       "x-winback-routing-key": "crm.customer.lapsed", "x-winback-attempts": 0,
                       "x-winback-parked-at": datetime.now(UTC).isoformat(timespec="seconds")}
            ch.basic_publish("", settings.parking_queue, json.dumps(lapsed(f"evt-{n}", f"ACC-{n}")).encode(),
                             pika.BasicProperties(headers=headers, delivery_mode=2))
    assert message_count(settings.parking_queue) == count
    replay = subprocess.Popen([sys.executable, "-m", "worker", "parked", "replay", "--all"],
                              cwd=ROOT, env=os.environ | _env(names, tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert replay.stdout is not None
    for _ in range(5):
        assert replay.stdout.readline().startswith(b"replayed evt-")
    replay.send_signal(signal.SIGKILL)
    replay.wait(timeout=10)
    replay.stdout.close()
    wait_until(lambda: message_count(settings.parking_queue) + work_count(settings) >= count,
               what="every message back in one queue or the other")
    requeued = [json.loads(body)["id"] for _, _, body in take_all_work(settings)]
    still_parked = [json.loads(body)["id"] for _, body in take_all(settings.parking_queue)]
    assert 5 <= len(requeued) < count, "killed half-way"
    assert set(requeued) | set(still_parked) == {f"evt-{n}" for n in range(count)}
    assert len(set(requeued) & set(still_parked)) <= 1, "at most the one between confirm and ack"
    assert len(requeued) == len(set(requeued))
