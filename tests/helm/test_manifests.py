"""Every values set renders, lints clean, and yields manifests Kubernetes (and the CRDs) accept."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.helm.chart import CHART_DIR, KUBERNETES_VERSIONS, REPO, VALUE_SETS, ChartUnderTest, helm

SCHEMAS = Path(__file__).parent / "schemas"
CRD_KINDS = {"keda.sh/v1alpha1", "monitoring.coreos.com/v1"}


def crd_schema(doc: dict[str, Any]) -> dict[str, Any]:
    group_version = doc["apiVersion"].replace("/", "_")
    return json.loads((SCHEMAS / f"{group_version}_{doc['kind']}.json").read_text())


def validate_crd(doc: dict[str, Any]) -> None:
    schema = crd_schema(doc)
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_every_manifest_is_valid_for_recent_kubernetes(chart: ChartUnderTest, set_name: str) -> None:
    rendered = chart.render(VALUE_SETS[set_name])
    checked = 0
    for doc in rendered.docs:
        if doc["apiVersion"] in CRD_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 4  # at least the Deployment, both ConfigMaps and the ServiceAccount


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_every_custom_resource_matches_its_crd_schema(chart: ChartUnderTest, set_name: str) -> None:
    for doc in chart.render(VALUE_SETS[set_name]).docs:
        if doc["apiVersion"] in CRD_KINDS:
            validate_crd(doc)


def test_the_custom_resources_that_are_checked_are_the_keda_and_prometheus_ones(
    chart: ChartUnderTest,
) -> None:
    kinds = {(d["apiVersion"], d["kind"]) for name in ("keda", "salesforce-jwt")
             for d in chart.render(VALUE_SETS[name]).docs if d["apiVersion"] in CRD_KINDS}
    assert kinds == {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
                     ("monitoring.coreos.com/v1", "ServiceMonitor"),
                     ("monitoring.coreos.com/v1", "PrometheusRule")}


def test_crd_schemas_refuse_a_number_as_keda_trigger_metadata(chart: ChartUnderTest) -> None:
    scaled = copy.deepcopy(chart.render(VALUE_SETS["keda"]).one("ScaledObject"))
    scaled["spec"]["triggers"][0]["metadata"]["value"] = 250  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        validate_crd(scaled)


def test_crd_schemas_refuse_a_service_monitor_without_endpoints(chart: ChartUnderTest) -> None:
    monitor = copy.deepcopy(chart.render(VALUE_SETS["keda"]).one("ServiceMonitor"))
    del monitor["spec"]["endpoints"]
    with pytest.raises(jsonschema.ValidationError, match="'endpoints' is a required property"):
        validate_crd(monitor)


def test_kubernetes_validation_refuses_an_unknown_container_field(chart: ChartUnderTest) -> None:
    deployment = copy.deepcopy(chart.render().one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["subpath"] = "rules.yaml"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_chart_lints_clean_in_strict_mode(set_name: str) -> None:
    report = helm().lint(CHART_DIR, VALUE_SETS[set_name], strict=True,
                         kube_version=f"v{KUBERNETES_VERSIONS[-1]}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == []
    assert problems == []


def test_lint_reports_values_the_schema_refuses() -> None:
    report = helm().lint(CHART_DIR, {"config": {"crm": "hubspot"}}, strict=True)
    assert any("/config/crm" in error for error in report["errors"])


def test_chart_app_version_is_the_worker_version(chart: ChartUnderTest) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    meta = chart.chart.metadata
    assert (meta["apiVersion"], meta["name"]) == ("v2", "winback")
    assert meta["appVersion"] == project["version"]
