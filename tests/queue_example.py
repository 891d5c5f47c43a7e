"""The shipped rules with their commented queue example switched on: a Case for a queue."""

from __future__ import annotations

import shutil
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "config"
EXAMPLE_RULE = "critical-complaint-case-for-the-service-queue"


def rules_with_queue_example(tmp_path: Path, queue: str) -> Path:
    """config/rules.yaml with the ``escalations`` owner set to ``queue:<queue>`` and the example
    ``open_case`` rule uncommented, exactly as an admin would, beside a copy of the templates."""
    text = (CONFIG / "rules.yaml").read_text()
    owner = "    # escalations: queue:Service_Escalations"
    assert owner in text, "the queue example in config/rules.yaml moved"
    text = text.replace(owner, f"    escalations: queue:{queue}")
    out, inside = [], False
    for line in text.splitlines():
        inside = line.startswith(f"  # - id: {EXAMPLE_RULE}") or (inside and line.startswith("  #"))
        out.append(line[:2] + line[4:] if inside else line)
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join(out) + "\n")
    shutil.copytree(CONFIG / "templates", tmp_path / "templates", dirs_exist_ok=True)
    return path
