"""The commands a person types: publish with confirms, then look into the CRM."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.integration.broker import Names, work_count
from tests.integration.harness import make_settings
from worker.cli import cli

SAMPLES = Path(__file__).parents[2] / "config" / "samples"


def _env(names: Names, tmp_path: Path) -> dict[str, str]:
    env = {f"WINBACK_{k.upper()}": str(v) for k, v in names.settings.items()}
    return env | {"WINBACK_LOCAL_CRM_PATH": str(tmp_path / "crm.sqlite3")}


def test_publish_sends_every_sample_event_and_confirms(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    result = CliRunner().invoke(cli, ["publish", str(SAMPLES / "01-lapsed.json"),
                                      str(SAMPLES / "one" / "complaint.json")],
                                env=_env(names, tmp_path))
    assert result.exit_code == 0, result.output
    assert "published 5 event(s)" in result.output
    assert work_count(settings) == 5


def test_publish_refuses_an_invalid_event_file_and_sends_nothing(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path)
    bad = tmp_path / "bad.json"
    good = json.loads((SAMPLES / "one" / "lapsed.json").read_text())
    bad.write_text(json.dumps([good, good | {"specversion": "2.0"}]))
    result = CliRunner().invoke(cli, ["publish", str(bad)], env=_env(names, tmp_path))
    assert result.exit_code == 1
    assert f"{bad}: not a CloudEvent: specversion" in result.output
    assert work_count(settings) == 0


def test_crm_list_on_an_empty_crm_prints_empty_tables(names: Names, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["crm", "list", "--format", "json"], env=_env(names, tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
