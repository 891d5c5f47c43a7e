"""Rules directories on disk for the reload tests: plain files, and Kubernetes ConfigMap volumes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def rules_text(version: int, *, valid: bool = True) -> str:
    """A small rule set whose every part names its version, so a mix of two is visible."""
    on = "customer.lapsed" if valid else "customer.lapsd"
    return f"""\
version: "{version}"
settings:
  sla_minutes: {version}
rules:
  - id: first-v{version}
    on: {on}
    then: [{{create_task: {{kind: note, subject: "v{version}", template: note.txt.j2}}}}]
  - id: second-v{version}
    on: complaint.logged
    then: [{{create_task: {{kind: note, subject: "v{version}"}}}}]
"""


def template_text(version: int) -> str:
    return f"version {version} for {{{{ account_name }}}}"


def write_plain(folder: Path, version: int, *, valid: bool = True) -> Path:
    """``folder/rules.yaml`` and ``folder/templates/note.txt.j2``, each replaced atomically."""
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / "templates" / "note.txt.j2", template_text(version))
    _atomic_write(folder / "rules.yaml", rules_text(version, valid=valid))
    return folder / "rules.yaml"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ConfigMapVolume:
    """A directory laid out as kubelet lays out a ConfigMap volume, updated as kubelet does.

    ``rules.yaml -> ..data/rules.yaml`` and ``templates -> ..data/templates`` never change; an
    update writes a new ``..<generation>`` directory, renames a ``..data_tmp`` symlink over
    ``..data`` (the atomic step) and then deletes the old generation.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        root.mkdir(parents=True, exist_ok=True)

    @property
    def rules(self) -> Path:
        return self.root / "rules.yaml"

    def publish(self, version: int, **options: Any) -> None:
        self.generation += 1
        new = self.root / f"..2026_11_22_{self.generation:04d}"
        (new / "templates").mkdir(parents=True)
        (new / "templates" / "note.txt.j2").write_text(template_text(version))
        (new / "rules.yaml").write_text(rules_text(version, **options))
        data = self.root / "..data"
        old = data.resolve() if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(new.name)
        os.replace(tmp, data)
        for name in ("rules.yaml", "templates"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")
        if old is not None:
            shutil.rmtree(old)
