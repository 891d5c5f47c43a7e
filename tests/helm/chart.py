"""The chart rendered offline with helm-python-sdk, and the manifests picked apart for the tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "winback"
RELEASE = "winback"
NAMESPACE = "crm"

# An old-but-supported and a recent Kubernetes; kubernetes-validate bundles both schemas (offline).
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")

PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
AMQP_URL = "amqps://winback:s3cret-pass@rabbitmq.messaging:5671/crm"
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQFake.Token"

# The values sets the chart must render, by name (None: the chart's own defaults).
VALUE_SETS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "salesforce-jwt": {
        "amqp": {"url": AMQP_URL},
        "config": {"salesforceClientId": "3MVG9consumer", "salesforceUsername": "winback@acme.com",
                   "salesforceLoginUrl": "https://acme.my.salesforce.com"},
        "salesforce": {"auth": "jwt", "privateKey": PRIVATE_KEY, "caBundle": {"configMap": "corp-ca"}},
        "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        "networkPolicy": {"enabled": True},
    },
    "salesforce-token": {
        "config": {"salesforceInstanceUrl": "https://acme.my.salesforce.com"},
        "salesforce": {"auth": "token", "accessToken": ACCESS_TOKEN, "caBundle": {"secret": "corp-ca"}},
        "amqp": {"caBundle": {"configMap": "broker-ca", "key": "rabbitmq-ca.pem"}},
    },
    "keda": {
        "config": {"queue": "crm.winback.work", "partitions": 12, "salesforceClientId": "3MVG9consumer",
                   "salesforceUsername": "winback@acme.com"},
        "keda": {"enabled": True, "minReplicaCount": 2, "maxReplicaCount": 12, "queueLength": 250},
        "salesforce": {"existingSecret": "sf-jwt"},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
    "local-crm-pvc": {
        "replicas": 1,
        "config": {"crm": "local"},
        "localCrm": {"persistence": {"enabled": True, "storageClassName": "standard", "size": "2Gi"}},
        "networkPolicy": {"enabled": True},
    },
    "local-crm-emptydir": {"replicas": 1, "config": {"crm": "local"}},
}


def helm() -> ModuleType:
    """helm_python; fails in CI and skips locally when it cannot be imported (like require_broker)."""
    try:
        import helm_python
    except (ImportError, OSError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"helm-python-sdk is not installed (run scripts/install-test-tools.sh): {exc}")
    return helm_python


@dataclass
class Rendered:
    """One render: every manifest as a dict, in template order, and NOTES.txt."""

    docs: list[dict[str, Any]]
    notes: str

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def kinds(self) -> set[str]:
        return {d["kind"] for d in self.docs}

    @property
    def pod(self) -> dict[str, Any]:
        return self.one("Deployment")["spec"]["template"]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def env_entries(self) -> dict[str, dict[str, Any]]:
        """The container's own env entries by name."""
        return {e["name"]: e for e in self.container.get("env", [])}

    def env(self) -> dict[str, str]:
        """Every variable the worker starts with: the envFrom ConfigMaps, then literal env values
        (secretKeyRef ones as '<secret NAME/KEY>')."""
        merged: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            merged.update(self.one("ConfigMap", source["configMapRef"]["name"])["data"])
        for name, entry in self.env_entries().items():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            merged[name] = f"<secret {ref['name']}/{ref['key']}>" if ref else entry["value"]
        return merged

    def volume(self, name: str) -> dict[str, Any]:
        found = [v for v in self.pod["spec"]["volumes"] if v["name"] == name]
        assert len(found) == 1, f"expected one volume {name}"
        return found[0]

    def mount(self, name: str) -> dict[str, Any]:
        found = [m for m in self.container["volumeMounts"] if m["name"] == name]
        assert len(found) == 1, f"expected one mount of {name}"
        return found[0]


@dataclass
class ChartUnderTest:
    """The loaded chart; renders are cached by values, so each set is rendered once per session."""

    chart: Any
    _cache: dict[str, Rendered] = field(default_factory=dict)

    def render(self, values: dict[str, Any] | None = None) -> Rendered:
        key = json.dumps(values, sort_keys=True)
        if key not in self._cache:
            out = self.chart.render(values, name=RELEASE, namespace=NAMESPACE)
            self._cache[key] = parse(out)
        return self._cache[key]

    def refusal(self, values: dict[str, Any], error: str) -> str:
        """The message with which the chart refuses ``values``; ``error`` names the helm_python
        exception expected: HelmValuesError (values.schema.json) or HelmRenderError (a ``fail``)."""
        with pytest.raises(getattr(helm(), error)) as caught:
            self.chart.render(values, name=RELEASE, namespace=NAMESPACE)
        return str(caught.value)


def parse(rendered: dict[str, str]) -> Rendered:
    yaml = YAML(typ="safe", pure=True)
    docs: list[dict[str, Any]] = []
    notes = ""
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            notes = rendered[path]
            continue
        docs.extend(d for d in yaml.load_all(rendered[path]) if d)
    return Rendered(docs, notes)
