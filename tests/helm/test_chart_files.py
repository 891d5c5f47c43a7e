"""The chart's copies of the rules, templates and bridge sources (Helm reads only files inside the chart)."""

from __future__ import annotations

from pathlib import Path

from tests.helm.chart import CHART_DIR, REPO

FIX = "helm/winback/files/ differs from config/: run scripts/sync-chart-files.sh and commit the result"


def tree(root: Path, pattern: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob(pattern)) if p.is_file()}


def test_chart_files_are_the_rules_and_templates_of_config() -> None:
    config = REPO / "config"
    expected = {"rules.yaml": (config / "rules.yaml").read_bytes(),
                "sources.yaml": (config / "sources.yaml").read_bytes(), **tree(config, "templates/*.j2")}
    actual = tree(CHART_DIR / "files", "**/*")
    assert sorted(actual) == sorted(expected), FIX
    differing = [name for name in expected if actual[name] != expected[name]]
    assert differing == [], FIX
