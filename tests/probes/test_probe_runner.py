"""Probes through the real proxy against the fake upstream: pass, then fail when its answer changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy import probes
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.feedback.metrics import metrics_registry
from proxy.rules.loader import RuleLoadError
from tests.conftest import ProxyHandle
from tests.shadow.conftest import StartProxy, write_yaml

PROBE = {"id": "capital", "prompt": "Capital of France? One word.", "expect": {"exact": "Paris"}}


def configure(rules_dir: Path, **top: Any) -> None:
    write_yaml(
        rules_dir / "probes.yaml",
        {"schema_version": 1, "enabled": True, "interval_s": 0.05, "timeout_s": 2, "probes": [PROBE], **top},
    )


async def readyz(proxy: ProxyHandle) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.root}/readyz") as r:
        return r.status, await r.json()


async def until_outcome(proxy: ProxyHandle, outcome: str) -> None:
    runner = proxy.app[probes.PROBES]
    async with asyncio.timeout(5):
        while True:
            found = runner.results.get(("capital", "gpt-4o-mini"))
            if found is not None and found.outcome == outcome:
                return
            await asyncio.sleep(0.02)


def success(proxy: ProxyHandle) -> float | None:
    return metrics_registry(proxy.app).get_sample_value(
        "guardrail_probe_success", {"probe": "capital", "model": "gpt-4o-mini"}
    )


async def test_probe_fails_when_the_upstream_answer_changes(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    configure(rules_copy)
    upstream.default = Reply(text=" paris\n")
    proxy = await start_proxy(rules_copy, probes.install)
    await until_outcome(proxy, "pass")
    sent = upstream.requests[-1].json
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0
    assert upstream.requests[-1].headers["Authorization"].startswith("Bearer sk-upstream")
    status, body = await readyz(proxy)
    assert status == 200 and body["checks"]["probes"]["failing"] == []
    assert success(proxy) == 1

    upstream.default = Reply(text="Lyon")  # the provider changed under us
    await until_outcome(proxy, "fail")
    status, body = await readyz(proxy)
    check = body["checks"]["probes"]
    assert status == 200 and check["ok"] is True  # reported, not a readiness failure
    assert check["failing"] == ["capital@gpt-4o-mini"]
    (result,) = check["results"]
    assert result["answer"] == "Lyon" and "differs" in result["detail"]
    assert success(proxy) == 0


async def test_fail_ready_makes_the_proxy_not_ready(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    configure(rules_copy, fail_ready=True)
    upstream.default = Reply(status=500)  # an upstream error counts as a failed probe too
    proxy = await start_proxy(rules_copy, probes.install)
    await until_outcome(proxy, "error")
    status, body = await readyz(proxy)
    assert status == 503 and body["checks"]["probes"]["ok"] is False


async def test_disabled_probes_send_nothing(start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream) -> None:
    proxy = await start_proxy(rules_copy, probes.install)  # the shipped probes.yaml: off
    await asyncio.sleep(0.1)
    assert upstream.requests == []
    status, body = await readyz(proxy)
    assert status == 200 and body["checks"]["probes"]["enabled"] is False


def test_bad_probes_file_stops_startup(rules_copy: Path) -> None:
    configure(rules_copy, probes=[{**PROBE, "expect": {"exact": "Paris", "pattern": "P"}}])
    from proxy.probes.config import load_probes

    with pytest.raises(RuleLoadError) as exc:
        load_probes(rules_copy)
    assert "probes.yaml" in str(exc.value) and exc.value.rule_id == "capital"
