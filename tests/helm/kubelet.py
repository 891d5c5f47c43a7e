"""A ConfigMap volume laid out on disk the way the kubelet does it, for the worker to read.

The kubelet's atomic writer puts each generation of the files in a hidden timestamped directory,
points the ``..data`` symlink at it, and links every top-level name through ``..data``. An update
writes a new generation and renames a fresh symlink over ``..data``: one atomic swap.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from tests.helm.chart import Rendered


def projected_files(rendered: Rendered, volume: str = "rules") -> dict[str, str]:
    """The files a projected ConfigMap volume shows the pod: {path in the volume: text}."""
    files: dict[str, str] = {}
    for source in rendered.volume(volume)["projected"]["sources"]:
        ref = source["configMap"]
        data = rendered.one("ConfigMap", ref["name"])["data"]
        for item in ref["items"]:
            files[item["path"]] = data[item["key"]]
    return files


def write_generation(target: Path, files: dict[str, str], generation: str) -> None:
    """Write ``files`` as a new generation under ``target`` and swap ``..data`` to it."""
    target.mkdir(parents=True, exist_ok=True)
    folder = target / f"..{generation}"
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    previous = (target / "..data").resolve() if (target / "..data").is_symlink() else None
    fresh = target / "..data_tmp"
    fresh.symlink_to(folder.name)
    os.replace(fresh, target / "..data")
    for top in {PurePosixPath(rel).parts[0] for rel in files}:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    if previous is not None and previous != folder.resolve():
        shutil.rmtree(previous)  # the kubelet removes the old generation right after the swap
