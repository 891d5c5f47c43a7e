"""Replicas, KEDA, disruption budget, the embedded CRM's volume, metrics and network policy."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.helm.chart import REPO, VALUE_SETS, ChartUnderTest
from worker.metrics import Metrics


def test_defaults_run_two_replicas_with_a_disruption_budget(chart: ChartUnderTest) -> None:
    rendered = chart.render()
    assert rendered.one("Deployment")["spec"]["replicas"] == 2
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_optional_resources_are_off_by_default(chart: ChartUnderTest) -> None:
    assert chart.render().kinds() == {"ConfigMap", "Deployment", "PodDisruptionBudget", "ServiceAccount"}


def test_one_replica_gets_no_disruption_budget_unless_asked(chart: ChartUnderTest) -> None:
    assert chart.render({"replicas": 1}).all("PodDisruptionBudget") == []
    forced = chart.render({"replicas": 1, "podDisruptionBudget": {"enabled": True}})
    assert len(forced.all("PodDisruptionBudget")) == 1


def test_keda_scales_on_the_configured_queue_with_the_broker_secret(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["keda"])
    deployment = rendered.one("Deployment")
    scaled = rendered.one("ScaledObject")["spec"]
    triggers = scaled["triggers"]
    trigger = triggers[0]
    assert "replicas" not in deployment["spec"]  # KEDA owns the count
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": deployment["metadata"]["name"]}
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 12)
    assert trigger["type"] == "rabbitmq"
    assert rendered.env()["WINBACK_QUEUE"] == "crm.winback.work"
    assert rendered.env()["WINBACK_PARTITIONS"] == "12"
    assert [t["metadata"]["queueName"] for t in triggers] == [f"crm.winback.work.p{n}" for n in range(12)]
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["value"] == "250"

    auth = rendered.one("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    broker = rendered.env_entries()["WINBACK_AMQP_URL"]["valueFrom"]["secretKeyRef"]
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "host", **broker}]


def test_keda_with_several_minimum_replicas_keeps_a_disruption_budget(chart: ChartUnderTest) -> None:
    assert len(chart.render(VALUE_SETS["keda"]).all("PodDisruptionBudget")) == 1
    single = chart.render({"keda": {"enabled": True, "minReplicaCount": 1}})
    assert single.all("PodDisruptionBudget") == []


def test_embedded_crm_with_persistence_is_one_pod_on_a_claim_replaced_not_rolled(
    chart: ChartUnderTest,
) -> None:
    rendered = chart.render(VALUE_SETS["local-crm-pvc"])
    deployment = rendered.one("Deployment")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}  # never two writers of one SQLite file
    claim = rendered.one("PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert rendered.volume("data")["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    database = PurePosixPath(rendered.env()["WINBACK_LOCAL_CRM_PATH"])
    assert PurePosixPath(rendered.mount("data")["mountPath"]) == database.parent
    assert rendered.all("PodDisruptionBudget") == []


def test_embedded_crm_on_an_existing_claim_creates_none(chart: ChartUnderTest) -> None:
    rendered = chart.render({"replicas": 1, "config": {"crm": "local"},
                             "localCrm": {"persistence": {"enabled": True, "existingClaim": "crm-data"}}})
    assert rendered.all("PersistentVolumeClaim") == []
    assert rendered.volume("data")["persistentVolumeClaim"]["claimName"] == "crm-data"


def test_embedded_crm_without_persistence_uses_an_emptydir(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["local-crm-emptydir"])
    assert rendered.volume("data") == {"name": "data", "emptyDir": {}}
    assert "an emptyDir: a demo" in rendered.notes


def test_salesforce_pods_get_no_crm_volume_and_roll_without_downtime(chart: ChartUnderTest) -> None:
    rendered = chart.render()
    assert "data" not in {v["name"] for v in rendered.pod["spec"]["volumes"]}
    assert "WINBACK_LOCAL_CRM_PATH" not in rendered.env()
    assert rendered.one("Deployment")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                                               "maxUnavailable": 0}


def test_service_monitor_scrapes_the_metrics_service(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-jwt"])
    service = rendered.one("Service")
    monitor = rendered.one("ServiceMonitor")["spec"]
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["selector"]["matchLabels"].items())
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert monitor["namespaceSelector"] == {"matchNames": ["crm"]}
    pod_labels = rendered.pod["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["publishNotReadyAddresses"] is True


def egress_ports(rendered_policy: dict[str, object]) -> set[tuple[int | str, str]]:
    rules = rendered_policy["spec"]["egress"]  # type: ignore[index]
    return {(p["port"], p["protocol"]) for rule in rules for p in rule["ports"]}


@pytest.mark.parametrize(("set_name", "salesforce"), [("salesforce-jwt", True), ("local-crm-pvc", False)])
def test_network_policy_allows_dns_the_broker_and_salesforce_only_when_used(
    chart: ChartUnderTest, set_name: str, salesforce: bool
) -> None:
    policy = chart.render(VALUE_SETS[set_name]).one("NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    expected = {(53, "UDP"), (53, "TCP"), (5672, "TCP"), (5671, "TCP")}
    if salesforce:
        expected.add((443, "TCP"))
    assert egress_ports(policy) == expected
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]


def _alerts(chart: ChartUnderTest) -> dict[str, dict[str, Any]]:
    rule = chart.render(VALUE_SETS["salesforce-jwt"]).one("PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_the_alerts_cover_what_pages_the_on_call_engineer(chart: ChartUnderTest) -> None:
    assert set(_alerts(chart)) == {
        "WinbackParkedMessagesGrowing", "WinbackConsumptionPaused", "WinbackBrokerDisconnected",
        "WinbackCrmApiAllowanceLow", "WinbackNoProgress", "WinbackRetryQueuesGrowing",
    }
    assert "PrometheusRule" not in chart.render().kinds(), "off by default"


def test_every_alert_reads_only_metrics_the_worker_exports_in_its_own_namespace(
    chart: ChartUnderTest,
) -> None:
    exported = {m.name for m in Metrics().registry.collect()}
    exported |= {f"{name}_total" for name in exported}
    for name, alert in _alerts(chart).items():
        used = set(re.findall(r"\b(winback_[a-z_]+)\b", alert["expr"]))
        assert used, name
        assert used <= exported, f"{name} reads {used - exported}"
        assert alert["expr"].count('namespace="crm"') == len(re.findall(r"winback_[a-z_]+\{", alert["expr"]))


def test_every_alert_links_to_its_section_of_the_runbook(chart: ChartUnderTest) -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
               for line in runbook.splitlines() if line.startswith("## ")}
    for name, alert in _alerts(chart).items():
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == name.lower()
        assert anchor in anchors, f"docs/runbook.md has no section '## {name}'"
