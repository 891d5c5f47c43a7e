"""Open a page in Debian's headless Chromium and collect its DOM and every console message."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Chromium writes each console message (console.log/error, uncaught errors, failed loads) to
# stderr with --enable-logging=stderr: `[pid:tid:date:INFO:CONSOLE:1] "text", source: url (line)`.
_CONSOLE = re.compile(r":CONSOLE(?::\d+)?\]\s*\"(?P<text>.*)\", source: (?P<source>.*)$")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")


@dataclass(frozen=True)
class Rendered:
    dom: str
    console: list[str]


def chromium_or_skip() -> str:
    """The browser's path; missing fails under CI=true (.ci/run installs it) and skips elsewhere."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: scripts/install-test-tools.sh installs it")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def render(page: Path) -> Rendered:
    """Load ``page`` in a fresh profile; the DOM after scripts ran and the console messages."""
    browser = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="winback-chromium-") as profile:
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group("text") for line in done.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return Rendered(done.stdout, console)
