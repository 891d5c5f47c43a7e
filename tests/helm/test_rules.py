"""The rules ConfigMap: mounted as a directory the worker reads and reloads, never checksummed."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from tests.helm.chart import REPO, VALUE_SETS, ChartUnderTest
from tests.helm.kubelet import projected_files, write_generation
from worker.rules_source import RulesHolder, RulesWatcher, load_snapshot

CONFIG = REPO / "config"
SHIPPED_TEMPLATES = sorted(p.name for p in (CONFIG / "templates").glob("*.j2"))
VERSION_LINE = re.compile(r'^version: "([^"]+)"$', re.MULTILINE)


def config_files() -> dict[str, str]:
    files = {"rules.yaml": (CONFIG / "rules.yaml").read_text(encoding="utf-8")}
    for name in SHIPPED_TEMPLATES:
        files[f"templates/{name}"] = (CONFIG / "templates" / name).read_text(encoding="utf-8")
    return files


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_no_volume_is_mounted_with_subpath(chart: ChartUnderTest, set_name: str) -> None:
    mounts = chart.render(VALUE_SETS[set_name]).container["volumeMounts"]
    assert [m["name"] for m in mounts if "subPath" in m or "subPathExpr" in m] == []


def test_rules_directory_is_where_winback_rules_points(chart: ChartUnderTest) -> None:
    rendered = chart.render()
    rules = PurePosixPath(rendered.env()["WINBACK_RULES"])
    assert rules.name == "rules.yaml"
    assert PurePosixPath(rendered.mount("rules")["mountPath"]) == rules.parent


def test_pod_sees_the_rules_and_templates_of_config_byte_for_byte(chart: ChartUnderTest) -> None:
    assert projected_files(chart.render()) == config_files()


def test_templates_sit_in_a_templates_folder_beside_the_rules(chart: ChartUnderTest) -> None:
    paths = sorted(projected_files(chart.render()))
    assert paths == ["rules.yaml"] + [f"templates/{name}" for name in SHIPPED_TEMPLATES]


def test_worker_loads_the_mounted_rules_and_reloads_them_after_a_configmap_swap(
    chart: ChartUnderTest, tmp_path: Path
) -> None:
    volume = tmp_path / "etc-winback-rules"
    write_generation(volume, projected_files(chart.render()), "2026_11_22_10_00_00.000000001")
    rules_file = volume / "rules.yaml"
    rules, loaded = load_snapshot(rules_file)
    shipped = config_files()["rules.yaml"]
    assert rules.version == VERSION_LINE.search(shipped).group(1)  # type: ignore[union-attr]
    assert sorted(rules.templates.sources) == SHIPPED_TEMPLATES

    holder = RulesHolder(rules)
    watcher = RulesWatcher(rules_file, holder, loaded=loaded)
    changed, count = VERSION_LINE.subn('version: "helm-test-9"', shipped, count=1)
    assert count == 1
    updated = chart.render({"rules": {"inline": changed}})
    write_generation(volume, projected_files(updated), "2026_11_22_10_05_00.000000002")

    assert watcher.poll() == "applied"
    assert holder.current().version == "helm-test-9"


def test_a_rules_change_does_not_restart_the_pods(chart: ChartUnderTest) -> None:
    before = chart.render()
    after = chart.render({"rules": {"inline": "version: other\nrules: []\n",
                                    "templates": {"apology.html.j2": "<p>Sorry.</p>\n"}}})
    assert after.one("ConfigMap", "winback-rules") != before.one("ConfigMap", "winback-rules")
    assert after.pod == before.pod


def test_a_settings_change_restarts_the_pods(chart: ChartUnderTest) -> None:
    before = chart.render().pod["metadata"]["annotations"]
    after = chart.render({"config": {"batchSize": 50}}).pod["metadata"]["annotations"]
    assert after["checksum/config"] != before["checksum/config"]
    assert after["checksum/secret"] == before["checksum/secret"]


def test_a_chart_made_secret_change_restarts_the_pods(chart: ChartUnderTest) -> None:
    first = chart.render({"amqp": {"url": "amqp://a:one@broker/%2F"}}).pod["metadata"]["annotations"]
    second = chart.render({"amqp": {"url": "amqp://a:two@broker/%2F"}}).pod["metadata"]["annotations"]
    assert second["checksum/secret"] != first["checksum/secret"]
    assert second["checksum/config"] == first["checksum/config"]


def test_inline_rules_replace_the_shipped_file_and_templates_are_added(chart: ChartUnderTest) -> None:
    files = projected_files(chart.render({"rules": {
        "inline": "version: mine\n", "templates": {"welcome_back.txt.j2": "Hello {{ account_name }}\n"}}}))
    assert files["rules.yaml"] == "version: mine\n"
    assert files["templates/welcome_back.txt.j2"] == "Hello {{ account_name }}\n"
    assert files["templates/apology.html.j2"] == config_files()["templates/apology.html.j2"]


def test_existing_rules_configmap_is_mounted_with_the_shipped_template_names(chart: ChartUnderTest) -> None:
    rendered = chart.render({"rules": {"existingConfigMap": "acme-rules"}})
    assert [c["metadata"]["name"] for c in rendered.all("ConfigMap")] == ["winback-env"]
    source = rendered.volume("rules")["projected"]["sources"][0]["configMap"]
    assert source["name"] == "acme-rules"
    assert [i["key"] for i in source["items"]] == ["rules.yaml", *SHIPPED_TEMPLATES]


def test_existing_rules_configmap_mounts_the_template_names_given(chart: ChartUnderTest) -> None:
    rendered = chart.render({"rules": {"existingConfigMap": "acme-rules",
                                       "templateNames": ["b.txt.j2", "a.html.j2"]}})
    items = rendered.volume("rules")["projected"]["sources"][0]["configMap"]["items"]
    assert items == [{"key": "rules.yaml", "path": "rules.yaml"},
                     {"key": "a.html.j2", "path": "templates/a.html.j2"},
                     {"key": "b.txt.j2", "path": "templates/b.txt.j2"}]
