"""`winback bridge --help`, run as a process, lists the settings the bridge reads, and no secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from worker.bridge.cli import WORKER_ONLY
from worker.bridge.settings import BridgeSettings

REPO = Path(__file__).resolve().parents[2]


def test_bridge_help_lists_every_setting_the_bridge_reads_and_hides_the_broker_url() -> None:
    env = os.environ | {"WINBACK_AMQP_URL": "amqp://u:hunter2@h/"}
    result = subprocess.run([sys.executable, "-m", "worker", "bridge", "--help"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    listed = {word for line in result.stdout.splitlines() for word in line.split()
              if word.startswith("WINBACK_")}
    read = {f"WINBACK_{name.upper()}" for name in BridgeSettings.model_fields if name not in WORKER_ONLY}
    assert listed == read
    assert {"WINBACK_PUBSUB_ADDRESS", "WINBACK_SALESFORCE_ORG_ID", "WINBACK_BRIDGE_TOPICS",
            "WINBACK_BRIDGE_SOURCES", "WINBACK_METRICS_PORT", "WINBACK_STALL_LIMIT"} <= listed
    assert "hunter2" not in result.stdout
    assert "guest" not in result.stdout  # the default URL's password either


def test_worker_only_settings_are_settings_at_all() -> None:
    assert set(WORKER_ONLY) <= set(BridgeSettings.model_fields)
