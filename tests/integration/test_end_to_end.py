"""The worker end to end: real broker, real handlers and default rules, the embedded CRM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from handlers.registry import handle
from tests.integration.broker import Names, message_count, publish, work_count
from tests.integration.harness import lapsed, make_consumer, make_settings, running
from tests.waiting import wait_until
from worker.crm.local import LocalCrm
from worker.rules_source import load_rules

ROOT = Path(__file__).parents[2]
RULES = ROOT / "config" / "rules.yaml"
QUESTIONS = (
    "Why do you no longer use our products/services?",
    "Where do you obtain similar products or services now?",
    "What would encourage you to give us another chance?",
    "What would encourage you to stay with us for the long term?",
)


def test_a_lapsed_event_delivered_twice_yields_one_plan_and_one_discovery_task(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path)
    consumer, crm, _ = make_consumer(settings, handle=handle, rules=load_rules(RULES))
    event = lapsed("evt-dup", "ACC-7", account_name="Northwind Traders")
    publish(names, event)
    publish(names, event)
    with running(consumer):
        wait_until(lambda: work_count(settings) == 0 and len(crm.records()) > 0,
                   what="both deliveries taken")
        assert consumer.wait_settled(30), "both deliveries settled"
    plans = [r for r in crm.records() if r.kind == "plan"]
    discovery = [r for r in crm.records() if r.kind == "task" and r.fields["kind"] == "discovery"]
    assert [p.key for p in plans] == ["ACC-7#1"]
    assert len(discovery) == 1
    assert discovery[0].fields["subject"] == "Find out why Northwind Traders left"
    assert all(q in discovery[0].fields["description"] for q in QUESTIONS)
    assert discovery[0].fields["owner_id"] == "USR-1"
    assert message_count(settings.parking_queue) == 0


def _env(names: Names, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINBACK_")}
    env.update({f"WINBACK_{k.upper()}": str(v) for k, v in names.settings.items()})
    env.update(WINBACK_LOCAL_CRM_PATH=str(tmp_path / "crm.sqlite3"), WINBACK_RULES=str(RULES),
               WINBACK_LOG_FORMAT="json", WINBACK_RETRY_DELAYS="[0.2, 0.2, 0.2]", **extra)
    return env


def test_winback_run_exits_0_on_sigterm_and_loses_nothing(names: Names, tmp_path: Path) -> None:
    make_settings(names, tmp_path)
    for i in range(300):
        publish(names, lapsed(f"evt-{i}", f"ACC-{i}"))
    env = _env(names, tmp_path, WINBACK_BATCH_SIZE="10", WINBACK_PREFETCH="20")
    log_path = tmp_path / "worker.log"
    crm = LocalCrm(tmp_path / "crm.sqlite3")
    # The log goes to a file, as a log shipper would take it: a pipe nobody reads while the test
    # waits would fill and stall the worker (tests/unit/test_signals.py covers that case).
    with log_path.open("w") as log, subprocess.Popen(
        [sys.executable, "-m", "worker", "run"], env=env, cwd=ROOT, stderr=log
    ) as worker:
        try:
            wait_until(lambda: len(crm.records()) > 0, what="the worker to write something")
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    stderr = log_path.read_text()
    assert worker.returncode == 0, stderr[-3000:]
    assert '"stop_requested"' in stderr
    assert re.search(r'"signal":\s*"SIGTERM"', stderr)
    handled = len(crm.load([f"ACC-{i}" for i in range(300)], []).plans)
    assert handled + work_count(make_settings(names, tmp_path)) == 300
    crm.close()


def test_a_bad_setting_stops_start_up_with_one_clear_line(names: Names, tmp_path: Path) -> None:
    env = _env(names, tmp_path, WINBACK_PREFETCH="lots")
    done = subprocess.run([sys.executable, "-m", "worker", "run"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["winback: invalid setting: WINBACK_PREFETCH: Input should be a valid integer, "
                     "unable to parse string as an integer"]


def test_an_invalid_rules_file_stops_start_up_naming_file_and_line(names: Names, tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: '1'\nrules:\n  - id: x\n    on: customer.lapsed\n    then: []\n")
    env: dict[str, Any] = _env(names, tmp_path) | {"WINBACK_RULES": str(bad)}
    done = subprocess.run([sys.executable, "-m", "worker", "run"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"{bad}:5:" in done.stderr


def test_a_queue_declared_with_other_arguments_stops_start_up_with_one_clear_line(
    names: Names, tmp_path: Path
) -> None:
    make_settings(names, tmp_path)  # declares the queue with the default delivery limit
    env = _env(names, tmp_path, WINBACK_DELIVERY_LIMIT="3")
    done = subprocess.run([sys.executable, "-m", "worker", "run"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("winback:")]
    assert "PRECONDITION_FAILED" in line
    assert "x-delivery-limit" in line
    assert "WINBACK_DELIVERY_LIMIT" in line
