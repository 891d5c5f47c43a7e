"""Reload without restart: valid files apply whole, invalid ones are refused, symlink swaps count."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from handlers.rules.errors import RulesInvalidError
from handlers.rules.ruleset import RuleSet
from tests.rules.disk import ConfigMapVolume, template_text, write_plain
from tests.waiting import wait_until
from worker.metrics import Metrics
from worker.rules_source import (
    RulesHolder,
    RulesWatcher,
    load_rules,
    load_snapshot,
    read_snapshot,
)


class RecordingLog:
    """A structlog-shaped logger that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append(("info", event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append(("error", event, kw))

    def events(self) -> list[str]:
        return [event for _, event, _ in self.lines]


def _watch(path: Path, poll_seconds: float = 60.0) -> tuple[RulesWatcher, RulesHolder, Metrics,
                                                            RecordingLog]:
    rules, loaded = load_snapshot(path)
    holder = RulesHolder(rules)
    metrics, log = Metrics(CollectorRegistry()), RecordingLog()
    watcher = RulesWatcher(path, holder, poll_seconds, loaded=loaded, metrics=metrics, log=log)
    return watcher, holder, metrics, log


def _refused(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("winback_rules_reloads_refused_total") or 0.0


def _info(metrics: Metrics, version: str, source: Path) -> float | None:
    return metrics.registry.get_sample_value(
        "winback_rules_info", {"version": version, "source": str(source)})


def test_load_rules_reads_the_templates_beside_the_rules_file(tmp_path: Path) -> None:
    rules = load_rules(write_plain(tmp_path, 3))
    assert rules.version == "3"
    assert rules.templates.sources == {"note.txt.j2": template_text(3)}
    assert rules.source == str(tmp_path / "rules.yaml")


def test_a_missing_rules_file_is_a_rules_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(RulesInvalidError) as caught:
        load_rules(missing)
    assert [str(p) for p in caught.value.problems] == [
        f"{missing}:1:1: cannot read the rules: No such file or directory"]


def test_a_valid_change_is_applied_on_the_next_poll(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, metrics, log = _watch(path)
    assert watcher.poll() == "unchanged"
    write_plain(tmp_path, 2)
    assert watcher.poll() == "applied"
    assert holder.current().version == "2"
    assert holder.current().templates.sources["note.txt.j2"] == template_text(2)
    assert _info(metrics, "2", path) == 1.0
    assert log.lines[-1] == ("info", "rules_reloaded", {
        "version": "2", "previous_version": "1", "rules": 2, "source": str(path)})


def test_an_edit_made_after_loading_but_before_the_watcher_existed_is_applied_on_its_first_poll(
    tmp_path: Path,
) -> None:
    path = write_plain(tmp_path, 1)
    rules, loaded = load_snapshot(path)
    write_plain(tmp_path, 2)  # e.g. while the worker was still connecting to the CRM
    holder = RulesHolder(rules)
    watcher = RulesWatcher(path, holder, 60.0, loaded=loaded, log=RecordingLog())
    assert watcher.poll() == "applied"
    assert holder.current().version == "2"


def test_an_invalid_edit_made_before_the_watcher_existed_is_refused_on_its_first_poll(
    tmp_path: Path,
) -> None:
    path = write_plain(tmp_path, 1)
    rules, loaded = load_snapshot(path)
    write_plain(tmp_path, 2, valid=False)
    log = RecordingLog()
    watcher = RulesWatcher(path, RulesHolder(rules), 60.0, loaded=loaded, log=log)
    assert watcher.poll() == "refused"
    assert log.events() == ["rules_reload_refused"]


def test_load_snapshot_returns_the_rules_with_the_digest_of_exactly_what_they_were_parsed_from(
    tmp_path: Path,
) -> None:
    path = write_plain(tmp_path, 1)
    rules, loaded = load_snapshot(path)
    assert rules.version == "1"
    assert loaded.text == path.read_text()
    assert loaded.digest == read_snapshot(path).digest
    write_plain(tmp_path, 2)
    assert loaded.digest != read_snapshot(path).digest


def test_an_invalid_change_is_refused_with_the_check_messages_and_the_old_rules_stay(
    tmp_path: Path,
) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, metrics, log = _watch(path)
    before = holder.current()
    write_plain(tmp_path, 2, valid=False)
    assert watcher.poll() == "refused"
    assert holder.current() is before
    with pytest.raises(RulesInvalidError) as check:
        load_rules(path)
    level, event, fields = log.lines[-1]
    assert (level, event) == ("error", "rules_reload_refused")
    assert fields["problems"] == [str(p) for p in check.value.problems]
    assert fields["problems"] == [f"{path}:6:9: unknown event type 'customer.lapsd' "
                                  "— did you mean 'customer.lapsed'?"]
    assert fields["version_in_force"] == "1"
    assert _refused(metrics) == 1.0


def test_a_refused_file_is_logged_once_and_a_fixed_one_then_applies(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, metrics, log = _watch(path)
    write_plain(tmp_path, 2, valid=False)
    assert [watcher.poll(), watcher.poll(), watcher.poll()] == ["refused", "unchanged", "unchanged"]
    assert log.events().count("rules_reload_refused") == 1
    assert _refused(metrics) == 1.0
    write_plain(tmp_path, 2)
    assert watcher.poll() == "applied"
    assert holder.current().version == "2"


def test_touching_the_file_without_changing_it_reloads_nothing(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, _, log = _watch(path)
    before = holder.current()
    os.utime(path, ns=(1, 1))
    path.write_text(path.read_text())
    assert watcher.poll() == "unchanged"
    assert holder.current() is before
    assert log.lines == []


def test_a_template_change_alone_is_reloaded(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, _, _ = _watch(path)
    (tmp_path / "templates" / "note.txt.j2").write_text("changed for {{ account_name }}")
    assert watcher.poll() == "applied"
    assert holder.current().templates.sources["note.txt.j2"] == "changed for {{ account_name }}"


def test_a_template_that_fails_the_lint_is_refused(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, _, log = _watch(path)
    (tmp_path / "templates" / "note.txt.j2").write_text("No problem, {{ acount_name }}")
    assert watcher.poll() == "refused"
    assert holder.current().templates.sources["note.txt.j2"] == template_text(1)
    assert log.lines[-1][2]["problems"] == [
        f"{tmp_path}/templates/note.txt.j2:1:1: unknown variable 'acount_name' "
        "— did you mean 'account_name'?",
        f"{tmp_path}/templates/note.txt.j2:1:1: uses the banned phrase 'No problem' "
        "— say what will happen, and when, instead",
    ]


def test_a_deleted_rules_file_is_refused_and_the_old_rules_stay(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, _, log = _watch(path)
    path.unlink()
    assert watcher.poll() == "refused"
    assert holder.current().version == "1"
    assert log.lines[-1][2]["problems"] == [
        f"{path}:1:1: cannot read the rules: No such file or directory"]


def test_a_kubernetes_configmap_symlink_swap_is_applied_and_a_bad_one_refused(
    tmp_path: Path,
) -> None:
    volume = ConfigMapVolume(tmp_path / "config")
    volume.publish(1)
    watcher, holder, metrics, _ = _watch(volume.rules)
    volume.publish(2)
    assert watcher.poll() == "applied"
    assert holder.current().version == "2"
    assert holder.current().templates.sources["note.txt.j2"] == template_text(2)
    volume.publish(3, valid=False)
    assert watcher.poll() == "refused"
    assert holder.current().version == "2"
    volume.publish(4)
    assert watcher.poll() == "applied"
    assert holder.current().version == "4"
    assert _refused(metrics) == 1.0


def test_the_watcher_thread_applies_a_change_while_running(tmp_path: Path) -> None:
    path = write_plain(tmp_path, 1)
    watcher, holder, _, _ = _watch(path, poll_seconds=0.02)
    watcher.start()
    try:
        write_plain(tmp_path, 2)
        wait_until(lambda: holder.current().version == "2", timeout=10, what="version 2 in force")
    finally:
        watcher.stop()


def _consistent(rules: RuleSet) -> bool:
    """Every part of a rule set from ``rules_text``/``template_text`` names the same version."""
    v = rules.version
    return (
        [r.id for r in rules.file.rules] == [f"first-v{v}", f"second-v{v}"]
        and rules.settings.sla_minutes == int(v)
        and rules.templates.sources["note.txt.j2"] == template_text(int(v))
    )


def test_readers_never_see_half_loaded_rules_while_configmap_swaps_happen(tmp_path: Path) -> None:
    volume = ConfigMapVolume(tmp_path / "config")
    volume.publish(1)
    watcher, holder, _, log = _watch(volume.rules, poll_seconds=0.001)
    final, done = 30, threading.Event()
    seen: list[list[int]] = [[], []]
    broken: list[str] = []

    def read(into: list[int]) -> None:
        while not done.wait(0.0005):  # pacing only, so the readers leave the watcher some CPU
            rules = holder.current()  # once, as the consumer does per batch
            if not _consistent(rules):
                broken.append(f"mixed rule set under version {rules.version}")
            if not into or into[-1] != int(rules.version):
                into.append(int(rules.version))

    readers = [threading.Thread(target=read, args=(s,)) for s in seen]
    for reader in readers:
        reader.start()
    watcher.start()
    try:
        for version in range(2, final + 1):
            volume.publish(version)
        wait_until(lambda: holder.current().version == str(final), timeout=20,
                   what="the last version in force")
    finally:
        watcher.stop()
        done.set()
        for reader in readers:
            reader.join()
    assert broken == []
    assert "rules_reload_refused" not in log.events()
    for versions in seen:
        assert versions == sorted(versions)  # never back to older rules
        assert versions[0] == 1
        assert versions[-1] == final

