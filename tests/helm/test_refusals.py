"""Values the chart refuses before anything reaches a cluster, each with a message saying why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import VALUE_SETS, ChartUnderTest


def test_embedded_crm_with_three_replicas_is_refused(chart: ChartUnderTest) -> None:
    message = chart.refusal({"replicas": 3, "config": {"crm": "local"},
                             "localCrm": {"persistence": {"enabled": True}}}, "HelmRenderError")
    assert "config.crm=local keeps the CRM in one SQLite file that only one pod may write" in message
    assert "set replicas to 1 (it is 3)" in message


def test_embedded_crm_with_default_replicas_on_an_emptydir_is_refused_too(chart: ChartUnderTest) -> None:
    message = chart.refusal({"config": {"crm": "local"}}, "HelmRenderError")
    assert "set replicas to 1 (it is 2)" in message


def test_embedded_crm_under_keda_is_refused(chart: ChartUnderTest) -> None:
    message = chart.refusal({"replicas": 1, "config": {"crm": "local"}, "keda": {"enabled": True}},
                            "HelmRenderError")
    assert "keda.enabled must be false" in message


@pytest.mark.parametrize("termination", [20, 25])
def test_termination_grace_not_above_the_worker_grace_period_is_refused(
    chart: ChartUnderTest, termination: int
) -> None:
    message = chart.refusal({"terminationGracePeriodSeconds": termination}, "HelmRenderError")
    assert f"terminationGracePeriodSeconds ({termination}) must be greater than config.gracePeriod (25)" \
        in message


def test_a_longer_worker_grace_period_needs_a_longer_termination_grace(chart: ChartUnderTest) -> None:
    message = chart.refusal({"config": {"gracePeriod": 55}}, "HelmRenderError")
    assert "terminationGracePeriodSeconds (40) must be greater than config.gracePeriod (55)" in message
    rendered = chart.render({"config": {"gracePeriod": 55}, "terminationGracePeriodSeconds": 70})
    assert rendered.pod["spec"]["terminationGracePeriodSeconds"] == 70


@pytest.mark.parametrize(("values", "message"), [
    ({"amqp": {"existingSecret": "", "url": ""}}, "amqp: set amqp.existingSecret"),
    ({"salesforce": {"existingSecret": ""}}, "auth jwt needs salesforce.existingSecret"),
    ({"salesforce": {"auth": "token", "existingSecret": ""}}, "auth token needs salesforce.existingSecret"),
    ({"salesforce": {"caBundle": {"configMap": "a", "secret": "b"}}}, "set configMap or secret, not both"),
    ({"amqp": {"caBundle": {"configMap": "a", "secret": "b"}}}, "amqp.caBundle: set configMap or secret"),
    ({"rules": {"existingConfigMap": "mine", "inline": "version: x\n"}}, "exclude each other"),
    ({"keda": {"enabled": True, "minReplicaCount": 5, "maxReplicaCount": 3}},
     "keda.minReplicaCount (5) must not exceed keda.maxReplicaCount (3)"),
])
def test_contradictory_values_are_refused(
    chart: ChartUnderTest, values: dict[str, Any], message: str
) -> None:
    assert message in chart.refusal(values, "HelmRenderError")


@pytest.mark.parametrize(("values", "where"), [
    ({"config": {"batchSize": 5000}}, "/config/batchSize"),
    ({"config": {"crm": "hubspot"}}, "/config/crm"),
    ({"config": {"metricsPort": 0}}, "/config/metricsPort"),
    ({"config": {"batchsize": 50}}, "/config"),  # a typo is not silently ignored
    ({"config": {"retryDelays": "5,30"}}, "/config/retryDelays"),
    ({"replicas": "two"}, "/replicas"),
    ({"amqp": {"url": "https://broker"}}, "/amqp/url"),
    ({"salesforce": {"auth": "password"}}, "/salesforce/auth"),
    ({"salesforce": {"privateKey": "not a key"}}, "/salesforce/privateKey"),
    ({"rules": {"templates": {"apology.html": "x"}}}, "'apology.html' does not match pattern"),
    ({"extraEnv": [{"name": "WINBACK_QUEUE", "value": "x"}]}, "/extraEnv/0/name"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
    ({"podDisruptionBudget": {"enabled": "yes"}}, "/podDisruptionBudget/enabled"),
    ({"unknownTopLevel": True}, "additional properties 'unknownTopLevel' not allowed"),
])
def test_values_outside_the_schema_are_refused(
    chart: ChartUnderTest, values: dict[str, Any], where: str
) -> None:
    assert where in chart.refusal(values, "HelmValuesError")


def test_keda_allowed_more_replicas_than_partitions_is_refused(chart: ChartUnderTest) -> None:
    values = VALUE_SETS["keda"] | {"keda": VALUE_SETS["keda"]["keda"] | {"maxReplicaCount": 13}}
    message = chart.refusal(values, "HelmRenderError")
    assert "keda.maxReplicaCount (13) must not exceed config.partitions (12)" in message
