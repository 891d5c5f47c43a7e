"""``winback bridge`` and ``winback run`` as real processes (so one can be killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
# Seconds a process may take to start and subscribe: it imports grpc, pika and the rules, on a
# machine shared with other test suites (a loaded run once took longer than 30 s).
SLOW_START = 120


def environment(settings: BaseSettings, **extra: str) -> dict[str, str]:
    """The WINBACK_* variables that make a process build exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINBACK_")}
    for name in type(settings).model_fields:
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, tuple):
            value = json.dumps(list(value))
        env[f"WINBACK_{name.upper()}"] = str(value)
    return env | extra


class Process:
    """A ``winback`` subcommand with its output in a file; stopped (or killed) on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "worker", *args], env=env,
                                          cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *_: object) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
