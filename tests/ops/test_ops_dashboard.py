"""helm/dashboards/guardrail.json: well-formed, and every metric it queries is one /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO, MakeProxy

DASHBOARD = REPO / "helm" / "dashboards" / "guardrail.json"
METRIC = re.compile(r"\bguardrail_[a-z0-9_]+\b")
SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_is_well_formed() -> None:
    dash = dashboard()
    assert dash["uid"] == "guardrail-proxy" and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "team", "model"} <= names
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"]
    # What the issue asks the dashboard to show.
    text = " ".join(exprs(dash))
    for wanted in (
        "guardrail_requests_total",
        "guardrail_overhead_seconds_bucket",
        "guardrail_upstream_duration_seconds_bucket",
        "guardrail_time_to_first_token_seconds_bucket",
        "guardrail_tokens_total",
        "guardrail_cost_usd_total",
        "guardrail_verdicts_total",
        "guardrail_upstream_breaker_state",
        "guardrail_rules_reloads_total",
    ):
        assert wanted in text


async def test_every_queried_metric_is_exported(
    make_proxy: MakeProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUARDRAIL_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    proxy = await make_proxy()
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.root}/metrics") as r:
        text = await r.text()
    exported = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    queried = {m for e in exprs(dashboard()) for m in METRIC.findall(e)}
    missing = set()
    for name in queried:
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        if name not in exported and base not in exported:
            missing.add(name)
    assert not missing, f"dashboard queries metrics /metrics does not export: {sorted(missing)}"
