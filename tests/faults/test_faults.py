"""The fault suite: the worker as on-call meets it, against the real broker and the HTTPS test org.

Each scenario publishes events, breaks something, and checks that every valid event is written
exactly once, that only the poison is parked, and that the worker says the truth about itself
(``/readyz``, ``/healthz``, one log line, a metric). The totals go into one summary line.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from structlog.testing import capture_logs

from handlers.actions import REVISION_MARKER_TYPE, EventChange
from handlers.errors import WinbackError
from tests.faults.tally import TALLY
from tests.integration.broker import Names, message_count, publish, work_count
from tests.integration.harness import EMPTY_RULES, lapsed, make_settings, one_task
from tests.salesforce.changes import account_id
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings, token_settings
from tests.waiting import wait_until
from worker.app import consume
from worker.cli import _register_groups, cli
from worker.crm.local import LocalCrm
from worker.crm.port import Crm
from worker.crm.salesforce import SalesforceCrm
from worker.dispatch import Processor
from worker.health import Health
from worker.metrics import Metrics
from worker.pause import CrmAccessPause
from worker.policy import RetryPolicy
from worker.session import AmqpSession
from worker.settings import Settings
from worker.stop import StopToken

ROOT = Path(__file__).parents[2]
SF_SETTINGS = ("crm", "salesforce_instance_url", "salesforce_access_token", "salesforce_login_url",
               "salesforce_client_id", "salesforce_username", "salesforce_private_key_file",
               "salesforce_ca_bundle", "salesforce_api_version", "salesforce_timeout")
_register_groups()


def _worker(settings: Settings, crm: Crm) -> tuple[AmqpSession, Metrics]:
    """The session and processing side as ``winback run`` builds them, pause included."""
    from datetime import UTC, datetime

    metrics, stop = Metrics(), StopToken()
    processor = Processor(crm, lambda: EMPTY_RULES, one_task, lambda: datetime.now(UTC),
                          RetryPolicy(settings.retry_delays))
    return consume(settings, processor, metrics, stop, CrmAccessPause(crm, metrics, stop, first=0.2)), metrics


@contextmanager
def _running(session: AmqpSession) -> Iterator[None]:
    thread = threading.Thread(target=session.run, name="fault-worker")
    thread.start()
    try:
        wait_until(lambda: session.connections_opened > 0, what="the worker to connect")
        yield
    finally:
        session.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop within 30 s"


def _sf_settings(names: Names, tmp_path: Path, org: Settings, **overrides: Any) -> Settings:
    return make_settings(names, tmp_path, **{k: getattr(org, k) for k in SF_SETTINGS}, **overrides)


def _sf_ledger(server: SalesforceServer) -> list[str]:
    return [str(r["Event_Id__c"]) for r in server.records("Winback_Ledger__c")
            if r.get("Event_Type__c") != REVISION_MARKER_TYPE]


def _local_ledger(path: Path) -> list[str]:
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT event_id FROM ledger WHERE event_type != ?", (REVISION_MARKER_TYPE,))
        return [row[0] for row in rows]
    except sqlite3.OperationalError:  # the worker has not created its tables yet
        return []
    finally:
        db.close()


def _publish_lapsed(names: Names, count: int, tag: str, first: int = 0) -> set[str]:
    """``count`` lapses, each for its own account of the test org (numbered from ``first``)."""
    ids = {f"{tag}-{n}" for n in range(count)}
    for n in range(count):
        publish(names, lapsed(f"{tag}-{n}", account_id(first + n)))
    return ids


def _poison(names: Names, count: int) -> None:
    for n in range(count):
        bad = lapsed(f"poison-{n}", f"ACC-P{n}")
        del bad["data"]["account_name"]
        publish(names, bad)
    publish(names, b"{not json", routing_key="crm.customer.lapsed") if count else None


def test_an_expired_fixed_token_pauses_consumption_and_parks_nothing(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server:
        settings = _sf_settings(names, tmp_path, token_settings(server))
        crm = SalesforceCrm.from_settings(settings, retry=FAST_RETRY)
        session, metrics = _worker(settings, crm)
        health = Health(session, stall_limit=60)
        server.expire_sessions()
        ids = _publish_lapsed(names, 30, "token")
        with capture_logs() as logs, _running(session):
            wait_until(lambda: metrics.registry.get_sample_value("winback_consumption_paused") == 1,
                       what="consumption to pause")
            wait_until(lambda: work_count(settings) == 30, what="every message back in the queue")
            assert health.ready() == (False, "not consuming (connecting, paused for the CRM, or draining)")
            assert health.live()[0], "paused is not dead: no restart loop"
            wait_until(lambda: any(e["event"] == "crm_still_refusing" for e in logs), what="a re-check")
        crm.close()
        paused_lines = [e for e in logs if e["event"] == "consumption_paused"]
        assert len(paused_lines) == 1, "one clear line, not one per message"
        assert "WINBACK_SALESFORCE_ACCESS_TOKEN" in paused_lines[0]["action"]
        assert message_count(settings.parking_queue) == 0
        assert metrics.registry.get_sample_value("winback_crm_access_refused_total") == 1
        # The fix: a fresh token, and the worker restarted with it. Everything is written once.
        fixed = _sf_settings(names, tmp_path, token_settings(server))
        crm = SalesforceCrm.from_settings(fixed, retry=FAST_RETRY)
        session, _ = _worker(fixed, crm)
        with _running(session):
            wait_until(lambda: set(_sf_ledger(server)) >= ids, what="every event written")
        crm.close()
        TALLY.add("expired token", 30, _sf_ledger(server), ids)


def test_a_503_storm_rate_limits_two_replicas_and_poison_end_with_each_event_once(
    names: Names, tmp_path: Path
) -> None:
    with SalesforceServer(tmp_path) as server:
        settings = _sf_settings(names, tmp_path, jwt_settings(server), batch_size=10, prefetch=20)
        server.faults.unavailable(times=12)
        server.faults.limit_exceeded(times=6)
        crms = [SalesforceCrm.from_settings(settings, retry=FAST_RETRY) for _ in range(2)]
        workers = [_worker(settings, crm)[0] for crm in crms]
        ids = _publish_lapsed(names, 120, "storm")
        _poison(names, 3)
        with _running(workers[0]), _running(workers[1]):
            wait_until(lambda: set(_sf_ledger(server)) >= ids, timeout=60, what="every event written")
            wait_until(lambda: message_count(settings.parking_queue) == 4, what="the poison parked")
            wait_until(lambda: work_count(settings) == 0, what="the queue drained")
        for crm in crms:
            crm.close()
        assert all(w.connections_opened == 1 for w in workers)
        TALLY.add("503 storm, rate limit, two replicas, poison", 124, _sf_ledger(server), ids, parked=4)


class StuckCrm(LocalCrm):
    """The embedded CRM, but ``apply`` blocks until ``release`` is set: a stuck processing thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        self.entered.set()
        self.release.wait(60)
        return super().apply(changes)


def test_a_stuck_processing_thread_fails_liveness_and_recovers(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    crm = StuckCrm(settings.local_crm_path)
    session, _ = _worker(settings, crm)
    health = Health(session, stall_limit=0.5)
    ids = _publish_lapsed(names, 5, "stuck")
    with _running(session):
        wait_until(crm.entered.is_set, what="the processing thread to block")
        wait_until(lambda: not health.live()[0], what="liveness to fail")
        why = health.live()[1]
        assert why.startswith("stalled:"), why
        assert health.ready()[0], "still consuming: only liveness tells"
        crm.release.set()
        wait_until(lambda: set(_local_ledger(settings.local_crm_path)) >= ids, what="the events written")
        assert health.live() == (True, "ok")
    crm.close()
    TALLY.add("stuck processing thread", 5, _local_ledger(settings.local_crm_path), ids)


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


@contextmanager
def _broker_user(password: str) -> Iterator[str]:
    user = f"winback-fault-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_user", user, password)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield user
    finally:
        _rabbitmqctl("delete_user", user)


def _close_connections_of(user: str) -> int:
    listed = _rabbitmqctl("list_connections", "-q", "pid", "user").splitlines()
    names = [line.split("\t")[0] for line in listed if line.endswith(f"\t{user}")]
    for name in names:
        _rabbitmqctl("close_connection", name, "closed by the fault suite")
    return len(names)


def test_the_broker_closing_the_connection_and_refusing_the_password_at_run_time(
    names: Names, tmp_path: Path
) -> None:
    with _broker_user("first-pass") as user:
        url = f"amqp://{user}:first-pass@127.0.0.1:5672/%2F"
        settings = make_settings(names, tmp_path, amqp_url=url)
        crm = LocalCrm(settings.local_crm_path)
        session, metrics = _worker(settings, crm)
        first = _publish_lapsed(names, 20, "closed")
        with capture_logs() as logs, _running(session):
            wait_until(lambda: set(_local_ledger(settings.local_crm_path)) >= first, what="first events")
            _rabbitmqctl("change_password", user, "second-pass")
            assert _close_connections_of(user) == 1
            wait_until(lambda: any(e["event"] == "broker_refused" for e in logs), what="the refusal")
            assert not session.is_consuming()
            second = _publish_lapsed(names, 20, "refused", first=20)
            _rabbitmqctl("change_password", user, "first-pass")
            wait_until(lambda: set(_local_ledger(settings.local_crm_path)) >= first | second,
                       timeout=60, what="the events after the broker took the worker back")
        crm.close()
        assert sum(e["event"] == "broker_refused" for e in logs) == 1, "reported once"
        assert metrics.registry.get_sample_value("winback_broker_reconnects_total") >= 1
    TALLY.add("broker closed the connection, then refused the password", 40,
              _local_ledger(settings.local_crm_path), first | second)


def _env(names: Names, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINBACK_")}
    env.update({f"WINBACK_{k.upper()}": str(v) for k, v in names.settings.items()})
    env.update(WINBACK_LOCAL_CRM_PATH=str(tmp_path / "crm.sqlite3"), WINBACK_LOG_FORMAT="json",
               WINBACK_RULES=str(ROOT / "config" / "rules.yaml"), WINBACK_RETRY_DELAYS="[0.2, 0.2, 0.2]",
               WINBACK_BATCH_SIZE="10", WINBACK_PREFETCH="20", **extra)
    return env


def test_a_refused_amqp_password_stops_start_up_with_one_line(names: Names, tmp_path: Path) -> None:
    env = _env(names, tmp_path, WINBACK_AMQP_URL="amqp://guest:wrong-password@127.0.0.1:5672/%2F")
    done = subprocess.run([sys.executable, "-m", "worker", "run"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("winback: cannot start: the broker refused the worker: ")
    assert "ACCESS_REFUSED" in lines[-1]
    assert "wrong-password" not in done.stderr


def _run_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "worker", "run", *args], env=env, cwd=ROOT,
                                stderr=out)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_sigkill_mid_batch_then_sigterm_drain_then_park_fix_and_replay(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    env, log = _env(names, tmp_path), tmp_path / "worker.log"
    ids = _publish_lapsed(names, 300, "kill")
    _poison(names, 2)
    crm_path = settings.local_crm_path
    killed = _run_worker(env, log)
    try:
        wait_until(lambda: _local_ledger(crm_path), what="something written")
        killed.send_signal(signal.SIGKILL)
    finally:
        _reap(killed)
    drained = _run_worker(env, log)
    try:
        before = len(_local_ledger(crm_path))
        wait_until(lambda: len(_local_ledger(crm_path)) > before, what="the second worker to write")
        drained.send_signal(signal.SIGTERM)
        assert drained.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        _reap(drained)
    last = subprocess.run([sys.executable, "-m", "worker", "run", "--exit-when-idle", "1"], env=env,
                          cwd=ROOT, capture_output=True, timeout=120)
    assert last.returncode == 0, last.stderr[-2000:]
    assert set(_local_ledger(crm_path)) >= ids
    assert message_count(settings.parking_queue) == 3
    # The poison's publisher is fixed: the invalid copies are refused on replay, then purged;
    # one corrected event is re-published by hand and handled.
    runner = CliRunner()
    replay = runner.invoke(cli, ["parked", "replay", "--all"], env=env)
    assert replay.exit_code == 1
    assert "replayed 0, refused 3" in replay.output, replay.output
    purge = runner.invoke(cli, ["parked", "purge", "--all", "--yes"], env=env)
    assert "purged 3" in purge.output
    TALLY.add("SIGKILL mid-batch, SIGTERM drain, poison", 303, _local_ledger(crm_path), ids, parked=3)


def test_parked_then_fixed_then_replayed_is_written_once(names: Names, tmp_path: Path) -> None:
    with SalesforceServer(tmp_path) as server:
        settings = _sf_settings(names, tmp_path, jwt_settings(server))
        broken = account_id(1)  # replay-1's account
        server.faults.record_error("Task", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Due date on a holiday",
                                   when=lambda row: row.get("WhatId") == broken, times=None)
        crm = SalesforceCrm.from_settings(settings, retry=FAST_RETRY)
        session, _ = _worker(settings, crm)
        ids = {f"replay-{n}" for n in range(10)}
        for event_id in sorted(ids):
            publish(names, lapsed(event_id, account_id(int(event_id.split("-")[1]))))
        with _running(session):
            wait_until(lambda: message_count(settings.parking_queue) == 1, what="the rejected one parked")
            wait_until(lambda: len(_sf_ledger(server)) == 9, what="the others written")
            server.faults._records.clear()  # the admin fixed the validation rule
            replay = CliRunner().invoke(cli, ["parked", "replay", "--reason", "CrmRejectedError"],
                                        env={f"WINBACK_{k.upper()}": str(v)
                                             for k, v in names.settings.items()})
            assert "replayed 1, refused 0" in replay.output, replay.output
            wait_until(lambda: set(_sf_ledger(server)) == ids, what="the replayed event written")
        crm.close()
        TALLY.add("parked, fixed, replayed", 10, _sf_ledger(server), ids, replayed=1)
