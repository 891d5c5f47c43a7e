"""The Deployment the worker runs in: settings, secrets, probes, shutdown, security."""

from __future__ import annotations

import base64
from pathlib import PurePosixPath

import pytest

from handlers.errors import ConfigError
from tests.helm.chart import ACCESS_TOKEN, AMQP_URL, PRIVATE_KEY, VALUE_SETS, ChartUnderTest, Rendered
from worker.settings import Settings, load_settings

# Settings the chart derives from its own mounts and Secrets rather than from `config`.
DERIVED = {"WINBACK_AMQP_URL", "WINBACK_RULES", "WINBACK_LOCAL_CRM_PATH",
           "WINBACK_SALESFORCE_PRIVATE_KEY_FILE", "WINBACK_SALESFORCE_ACCESS_TOKEN",
           "WINBACK_SALESFORCE_CA_BUNDLE"}


def setting_name(variable: str) -> str:
    return variable.removeprefix("WINBACK_").lower()


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_every_winback_variable_the_chart_sets_is_a_worker_setting(
    chart: ChartUnderTest, set_name: str
) -> None:
    variables = [v for v in chart.render(VALUE_SETS[set_name]).env() if v.startswith("WINBACK_")]
    assert variables
    unknown = [v for v in variables if setting_name(v) not in Settings.model_fields]
    assert unknown == []


def test_every_worker_setting_can_be_set_through_the_chart(chart: ChartUnderTest) -> None:
    variables: set[str] = set()
    for values in VALUE_SETS.values():
        variables |= set(chart.render(values).env())
    config_keys = chart.chart.values["config"]
    exposed = {setting_name(v) for v in variables} | {
        setting_name(f"WINBACK_{k}") for k in map(snake_case, config_keys)}
    assert set(Settings.model_fields) - exposed == set()


def snake_case(key: str) -> str:
    return "".join(f"_{c}" if c.isupper() else c for c in key).upper()


def start_environment(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Put the pod's WINBACK_* environment in place (Secret references as placeholders)."""
    env = rendered.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("set_name", [name for name in VALUE_SETS if name != "defaults"])
def test_the_worker_accepts_the_settings_the_chart_gives_it(
    chart: ChartUnderTest, set_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = start_environment(chart.render(VALUE_SETS[set_name]), monkeypatch)
    settings = load_settings()  # reads the WINBACK_* environment, as `winback run` does
    assert settings.queue == env["WINBACK_QUEUE"]
    assert settings.crm == env["WINBACK_CRM"]
    assert settings.metrics_port == int(env["WINBACK_METRICS_PORT"])
    assert settings.retry_delays == (5.0, 30.0, 120.0, 600.0)
    assert str(settings.rules) == "/etc/winback/rules/rules.yaml"


def test_defaults_leave_the_salesforce_identity_to_set_and_both_notes_and_worker_say_so(
    chart: ChartUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = chart.render()
    start_environment(rendered, monkeypatch)
    with pytest.raises(ConfigError, match="WINBACK_SALESFORCE_CLIENT_ID"):
        load_settings()
    assert "WARNING: config.salesforceClientId and config.salesforceUsername" in rendered.notes


def test_config_keys_map_to_snake_case_variables(chart: ChartUnderTest) -> None:
    env = chart.render({"config": {"batchWaitMs": 75, "salesforceApiFloor": 2500000,
                                   "rulesPollSeconds": 0.5}}).env()
    assert env["WINBACK_BATCH_WAIT_MS"] == "75"
    assert env["WINBACK_SALESFORCE_API_FLOOR"] == "2500000"  # no 2.5e+06
    assert env["WINBACK_RULES_POLL_SECONDS"] == "0.5"
    assert env["WINBACK_RETRY_DELAYS"] == "[5,30,120,600]"


def test_empty_config_values_are_left_to_the_worker_defaults(chart: ChartUnderTest) -> None:
    env = chart.render().env()
    assert "WINBACK_SALESFORCE_INSTANCE_URL" not in env
    assert "WINBACK_SALESFORCE_CLIENT_ID" not in env


def test_broker_url_comes_from_a_secret_and_is_in_no_configmap(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-jwt"])
    ref = rendered.env_entries()["WINBACK_AMQP_URL"]["valueFrom"]["secretKeyRef"]
    secret = rendered.one("Secret", ref["name"])
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == AMQP_URL
    assert_secret_in_no_configmap(rendered, AMQP_URL)
    assert_secret_in_no_configmap(rendered, "s3cret-pass")


def test_existing_broker_secret_is_referenced_not_created(chart: ChartUnderTest) -> None:
    rendered = chart.render({"amqp": {"existingSecret": "rabbit-creds", "secretKey": "uri"}})
    ref = rendered.env_entries()["WINBACK_AMQP_URL"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("rabbit-creds", "uri")
    assert rendered.all("Secret") == []


def test_jwt_private_key_is_a_secret_file_at_the_configured_path(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-jwt"])
    key_file = PurePosixPath(rendered.env()["WINBACK_SALESFORCE_PRIVATE_KEY_FILE"])
    mount = rendered.mount("salesforce-key")
    assert PurePosixPath(mount["mountPath"]) == key_file.parent
    assert mount["readOnly"] is True
    source = rendered.volume("salesforce-key")["secret"]
    assert [item["path"] for item in source["items"]] == [key_file.name]
    secret = rendered.one("Secret", source["secretName"])
    assert base64.b64decode(secret["data"][source["items"][0]["key"]]).decode() == PRIVATE_KEY
    assert_secret_in_no_configmap(rendered, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")


def test_existing_jwt_secret_is_mounted_by_its_key(chart: ChartUnderTest) -> None:
    rendered = chart.render({"salesforce": {"existingSecret": "sf-jwt", "privateKeySecretKey": "tls.key"}})
    source = rendered.volume("salesforce-key")["secret"]
    assert source["secretName"] == "sf-jwt"
    assert source["items"] == [{"key": "tls.key", "path": "private-key.pem"}]
    assert rendered.all("Secret") == []


def test_access_token_comes_from_a_secret_in_token_mode(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-token"])
    ref = rendered.env_entries()["WINBACK_SALESFORCE_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert base64.b64decode(rendered.one("Secret", ref["name"])["data"][ref["key"]]).decode() == ACCESS_TOKEN
    assert "WINBACK_SALESFORCE_PRIVATE_KEY_FILE" not in rendered.env()
    assert_secret_in_no_configmap(rendered, ACCESS_TOKEN)


@pytest.mark.parametrize("set_name", ["salesforce-jwt", "salesforce-token"])
def test_ca_bundle_is_mounted_as_the_file_the_worker_is_told_about(
    chart: ChartUnderTest, set_name: str
) -> None:
    rendered = chart.render(VALUE_SETS[set_name])
    bundle = PurePosixPath(rendered.env()["WINBACK_SALESFORCE_CA_BUNDLE"])
    assert PurePosixPath(rendered.mount("ca-bundle")["mountPath"]) / "ca.crt" == bundle
    volume = rendered.volume("ca-bundle")
    source = volume.get("configMap") or volume["secret"]
    assert source["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_amqp_ca_bundle_is_mounted_as_the_file_the_worker_is_told_about(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["salesforce-token"])
    bundle = PurePosixPath(rendered.env()["WINBACK_AMQP_CA_BUNDLE"])
    assert PurePosixPath(rendered.mount("amqp-ca-bundle")["mountPath"]) / "rabbitmq-ca.pem" == bundle
    volume = rendered.volume("amqp-ca-bundle")
    assert volume["configMap"] == {"name": "broker-ca",
                                   "items": [{"key": "rabbitmq-ca.pem", "path": "rabbitmq-ca.pem"}]}
    assert "WINBACK_AMQP_CA_BUNDLE" not in chart.render().env()


def assert_secret_in_no_configmap(rendered: Rendered, secret: str) -> None:
    for configmap in rendered.all("ConfigMap"):
        for key, value in configmap["data"].items():
            assert secret not in value, f"ConfigMap {configmap['metadata']['name']} key {key}"


def test_probes_use_the_worker_health_endpoints_on_the_metrics_port(chart: ChartUnderTest) -> None:
    rendered = chart.render()
    container = rendered.container
    port = int(rendered.env()["WINBACK_METRICS_PORT"])
    assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    probes = {name: container[name]["httpGet"] for name in kinds}
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "metrics"},
        "livenessProbe": {"path": "/healthz", "port": "metrics"},
        "readinessProbe": {"path": "/readyz", "port": "metrics"},
    }


def test_metrics_port_setting_moves_the_container_port(chart: ChartUnderTest) -> None:
    rendered = chart.render({"config": {"metricsPort": 9300}, "metrics": {"service": {"enabled": True}}})
    assert rendered.container["ports"][0]["containerPort"] == 9300
    assert rendered.env()["WINBACK_METRICS_PORT"] == "9300"
    service = rendered.one("Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_pods_run_winback_run(chart: ChartUnderTest) -> None:
    container = chart.render().container
    assert (container["command"], container["args"]) == (["winback"], ["run"])
    assert container["image"] == "winback:0.1.0"


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_kubernetes_waits_longer_than_the_worker_grace_period(chart: ChartUnderTest, set_name: str) -> None:
    rendered = chart.render(VALUE_SETS[set_name])
    grace = float(rendered.env()["WINBACK_GRACE_PERIOD"])
    assert rendered.pod["spec"]["terminationGracePeriodSeconds"] > grace


def test_pods_are_locked_down(chart: ChartUnderTest) -> None:
    rendered = chart.render()
    pod = rendered.pod["spec"]
    container = rendered.container["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(rendered.container["resources"]) == {"requests", "limits"}


def test_service_links_are_off_so_no_service_can_inject_a_winback_variable(chart: ChartUnderTest) -> None:
    # A Service named winback-metrics would otherwise give every pod WINBACK_METRICS_PORT=tcp://...
    rendered = chart.render({"metrics": {"service": {"enabled": True}}})
    assert rendered.one("Service")["metadata"]["name"] == "winback-metrics"
    assert rendered.pod["spec"]["enableServiceLinks"] is False


def test_the_only_writable_paths_are_tmp_and_the_embedded_crm(chart: ChartUnderTest) -> None:
    rendered = chart.render(VALUE_SETS["local-crm-pvc"])
    writable = {m["mountPath"] for m in rendered.container["volumeMounts"] if not m.get("readOnly")}
    crm_dir = str(PurePosixPath(rendered.env()["WINBACK_LOCAL_CRM_PATH"]).parent)
    assert writable == {"/tmp", crm_dir}
