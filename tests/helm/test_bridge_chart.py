"""The bridge's Deployment: off by default; when on, `winback bridge` with the worker's Secrets,
its probes on the metrics port, the CA bundles, its sources, and selectors apart from the worker's."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.helm.chart import CHART_DIR, KUBERNETES_VERSIONS, REPO, VALUE_SETS, ChartUnderTest, Rendered, helm
from worker.bridge.settings import BridgeSettings
from worker.settings import build_settings

ORG_ID = "00D5e000000AbCdEAF"


def _values(set_name: str = "salesforce-jwt", **bridge: object) -> dict[str, Any]:
    return dict(VALUE_SETS[set_name] or {}) | {"bridge": {"enabled": True, "orgId": ORG_ID, **bridge}}


def _bridge(rendered: Rendered) -> dict[str, Any]:
    (deployment,) = [d for d in rendered.all("Deployment") if d["metadata"]["name"].endswith("-bridge")]
    return deployment


def _worker(rendered: Rendered) -> dict[str, Any]:
    (deployment,) = [d for d in rendered.all("Deployment") if not d["metadata"]["name"].endswith("-bridge")]
    return deployment


def _container(rendered: Rendered) -> dict[str, Any]:
    (container,) = _bridge(rendered)["spec"]["template"]["spec"]["containers"]
    return container


def _env(rendered: Rendered) -> dict[str, str]:
    """What the bridge starts with: the env ConfigMap, then its own entries (Secrets as placeholders)."""
    container = _container(rendered)
    merged: dict[str, str] = {}
    for source in container["envFrom"]:
        merged.update(rendered.one("ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        merged[entry["name"]] = f"<secret {ref['name']}/{ref['key']}>" if ref else entry["value"]
    return merged


def _volume(rendered: Rendered, name: str) -> dict[str, Any]:
    (volume,) = [v for v in _bridge(rendered)["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    return volume


def _mounts(rendered: Rendered) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in _container(rendered)["volumeMounts"]}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_bridge_is_off_by_default(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-jwt"])
    names = [d["metadata"]["name"] for d in rendered.docs]
    assert not [n for n in names if "-bridge" in n or n.endswith("-sources")]


def test_the_bridge_runs_winback_bridge_with_the_workers_secrets(chart: ChartUnderTest) -> None:
    rendered = chart.render(_values())
    deployment = _bridge(rendered)
    assert _container(rendered)["args"] == ["bridge"]
    env = _env(rendered)
    assert env["WINBACK_SALESFORCE_ORG_ID"] == ORG_ID
    (worker,) = _worker(rendered)["spec"]["template"]["spec"]["containers"]
    worker_ref = {e["name"]: e for e in worker["env"]}["WINBACK_AMQP_URL"]["valueFrom"]["secretKeyRef"]
    assert env["WINBACK_AMQP_URL"] == f"<secret {worker_ref['name']}/{worker_ref['key']}>"
    assert env["WINBACK_SALESFORCE_PRIVATE_KEY_FILE"] == "/etc/winback/salesforce/private-key.pem"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_probes_use_the_bridge_health_endpoints_on_the_metrics_port(chart: ChartUnderTest) -> None:
    rendered = chart.render(_values())
    container = _container(rendered)
    port = int(_env(rendered)["WINBACK_METRICS_PORT"])
    assert port > 0  # the probes need it: 0 would turn the endpoint off
    assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    probes = {name: container[name]["httpGet"] for name in kinds}
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "metrics"},
        "livenessProbe": {"path": "/healthz", "port": "metrics"},
        "readinessProbe": {"path": "/readyz", "port": "metrics"},
    }


def test_the_metrics_port_setting_moves_the_bridge_port_too(chart: ChartUnderTest) -> None:
    values = _values()
    rendered = chart.render(values | {"config": {**values["config"], "metricsPort": 9300}})
    assert _container(rendered)["ports"][0]["containerPort"] == 9300
    assert _env(rendered)["WINBACK_METRICS_PORT"] == "9300"


@pytest.mark.parametrize(("set_name", "kind", "name"), [
    ("salesforce-jwt", "configMap", "corp-ca"), ("salesforce-token", "secret", "corp-ca")])
def test_the_salesforce_ca_bundle_is_mounted_and_verifies_the_pubsub_api_too(
        chart: ChartUnderTest, set_name: str, kind: str, name: str) -> None:
    values = _values(set_name)
    if set_name == "salesforce-token":
        values["config"] = {**values["config"], "crm": "salesforce"}
    rendered = chart.render(values)
    volume = _volume(rendered, "ca-bundle")
    source = volume[kind]
    assert source.get("name", source.get("secretName")) == name
    assert source["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert _mounts(rendered)["ca-bundle"] == "/etc/winback/ca"
    env = _env(rendered)
    assert env["WINBACK_SALESFORCE_CA_BUNDLE"] == env["WINBACK_PUBSUB_CA_BUNDLE"] == "/etc/winback/ca/ca.crt"


def test_the_broker_ca_bundle_is_mounted_as_for_the_worker(chart: ChartUnderTest) -> None:
    values = _values() | {"amqp": {**VALUE_SETS["salesforce-jwt"]["amqp"],  # type: ignore[index]
                                   "caBundle": {"configMap": "broker-ca", "key": "rabbitmq-ca.pem"}}}
    rendered = chart.render(values)
    assert _volume(rendered, "amqp-ca-bundle")["configMap"]["name"] == "broker-ca"
    assert _mounts(rendered)["amqp-ca-bundle"] == "/etc/winback/amqp-ca"
    assert _env(rendered)["WINBACK_AMQP_CA_BUNDLE"] == "/etc/winback/amqp-ca/rabbitmq-ca.pem"


def test_no_ca_bundle_no_ca_mounts(chart: ChartUnderTest) -> None:
    values = _values()
    values["salesforce"] = {k: v for k, v in values["salesforce"].items() if k != "caBundle"}
    rendered = chart.render(values)
    assert {"ca-bundle", "amqp-ca-bundle"} & set(_mounts(rendered)) == set()
    assert "WINBACK_PUBSUB_CA_BUNDLE" not in _env(rendered)


def test_the_bridge_reads_the_shipped_sources_or_the_ones_given(chart: ChartUnderTest) -> None:
    shipped = chart.render(_values())
    mine = "version: 1\nsources: []\n"
    given = chart.render(_values(sources=mine))
    for rendered, text in ((shipped, (REPO / "config" / "sources.yaml").read_text()), (given, mine)):
        configmap = rendered.one("ConfigMap", _volume(rendered, "sources")["configMap"]["name"])
        assert configmap["data"] == {"sources.yaml": text}
        assert _env(rendered)["WINBACK_BRIDGE_SOURCES"] == f"{_mounts(rendered)['sources']}/sources.yaml"
    annotations = [_bridge(r)["spec"]["template"]["metadata"]["annotations"] for r in (shipped, given)]
    assert annotations[0]["checksum/sources"] != annotations[1]["checksum/sources"]  # rolls the pod


def test_the_bridge_accepts_the_settings_the_chart_gives_it(
        chart: ChartUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(chart.render(_values()))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = build_settings(BridgeSettings)
    assert settings.salesforce_org_id == ORG_ID
    assert settings.bridge_topics == ("/data/ChangeEvents",)
    assert settings.pubsub_address == "api.pubsub.salesforce.com:7443"
    assert str(settings.bridge_sources) == "/etc/winback/sources/sources.yaml"
    assert settings.metrics_port == int(env["WINBACK_METRICS_PORT"])
    unknown = [v for v in env if v.startswith("WINBACK_")
               and v.removeprefix("WINBACK_").lower() not in BridgeSettings.model_fields]
    assert unknown == []


def test_no_selector_of_the_worker_picks_the_bridge_pod(chart: ChartUnderTest) -> None:
    rendered = chart.render(_values() | {"metrics": {"service": {"enabled": True}}})
    pod_labels = _bridge(rendered)["spec"]["template"]["metadata"]["labels"]
    worker_selectors = {
        "Deployment": _worker(rendered)["spec"]["selector"]["matchLabels"],
        "Service": rendered.one("Service", "winback-metrics")["spec"]["selector"],
        "NetworkPolicy": rendered.one("NetworkPolicy", "winback")["spec"]["podSelector"]["matchLabels"],
    }
    for pdb in rendered.all("PodDisruptionBudget"):
        worker_selectors["PodDisruptionBudget"] = pdb["spec"]["selector"]["matchLabels"]
    assert "PodDisruptionBudget" in worker_selectors  # two workers: a budget, which must not count it
    assert {kind: _selects(s, pod_labels) for kind, s in worker_selectors.items()} == dict.fromkeys(
        worker_selectors, False)
    assert _selects(_bridge(rendered)["spec"]["selector"]["matchLabels"], pod_labels)


def test_the_service_monitor_scrapes_the_bridge_too(chart: ChartUnderTest) -> None:
    rendered = chart.render(_values())
    monitor = rendered.one("ServiceMonitor")["spec"]
    service = rendered.one("Service", "winback-bridge-metrics")
    assert _selects(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert _selects(service["spec"]["selector"], _bridge(rendered)["spec"]["template"]["metadata"]["labels"])
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def _egress_ports(policy: dict[str, Any]) -> set[tuple[int | str, str]]:
    return {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


@pytest.mark.parametrize(("address", "port"), [(None, 7443), ("pubsub.corp.example:8443", 8443)])
def test_the_bridge_network_policy_lets_it_reach_the_pubsub_api(
        chart: ChartUnderTest, address: str | None, port: int) -> None:
    rendered = chart.render(_values(**({"pubsubAddress": address} if address else {})))
    policy = rendered.one("NetworkPolicy", "winback-bridge")
    assert _selects(policy["spec"]["podSelector"]["matchLabels"],
                    _bridge(rendered)["spec"]["template"]["metadata"]["labels"])
    assert _egress_ports(policy) == {(53, "UDP"), (53, "TCP"), (5672, "TCP"), (5671, "TCP"),
                                     (443, "TCP"), (port, "TCP")}
    assert (port, "TCP") not in _egress_ports(rendered.one("NetworkPolicy", "winback"))


def test_with_the_bridge_every_manifest_is_valid_and_the_chart_lints_clean(chart: ChartUnderTest) -> None:
    values = _values()
    for doc in chart.render(values).docs:
        if doc["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/")):
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    report = helm().lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBERNETES_VERSIONS[-1]}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_chart_refuses_a_pubsub_address_without_a_port(chart: ChartUnderTest) -> None:
    error = chart.refusal(_values(pubsubAddress="api.pubsub.salesforce.com"), "HelmValuesError")
    assert "pubsubAddress" in error


def test_the_notes_say_how_to_check_the_bridge_only_when_it_runs(chart: ChartUnderTest) -> None:
    assert "Bridge:" not in chart.render(VALUE_SETS["salesforce-jwt"]).notes
    notes = chart.render(_values()).notes
    assert "deployment/winback-bridge subscribes to /data/ChangeEvents" in notes
