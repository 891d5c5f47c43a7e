"""The bridge's Deployment: off by default; when on, `winback bridge` with the worker's Secrets."""

from __future__ import annotations

from tests.helm.chart import VALUE_SETS, ChartUnderTest


def _bridge(chart: ChartUnderTest, **bridge: object) -> list[dict[str, object]]:
    values = dict(VALUE_SETS["salesforce-jwt"] or {}) | {"bridge": {"enabled": True, **bridge}}
    return [d for d in chart.render(values).all("Deployment")
            if d["metadata"]["name"].endswith("-bridge")]


def test_the_bridge_is_off_by_default(chart: ChartUnderTest) -> None:
    names = [d["metadata"]["name"] for d in chart.render(VALUE_SETS["salesforce-jwt"]).all("Deployment")]
    assert not [n for n in names if n.endswith("-bridge")]


def test_the_bridge_runs_winback_bridge_with_the_workers_secrets(chart: ChartUnderTest) -> None:
    (deployment,) = _bridge(chart, orgId="00D5e000000AbCdEAF")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["bridge"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WINBACK_SALESFORCE_ORG_ID"]["value"] == "00D5e000000AbCdEAF"
    assert env["WINBACK_AMQP_URL"]["valueFrom"]["secretKeyRef"]
    assert env["WINBACK_SALESFORCE_PRIVATE_KEY_FILE"]["value"] == "/etc/winback/salesforce/private-key.pem"
    assert deployment["spec"]["replicas"] == 1
