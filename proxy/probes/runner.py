"""Sends the probes to each pinned model on a schedule and keeps the latest result of each.

Probes go through the proxy's own upstream (same key, pool, retries and breaker as real
traffic). Results land in metrics and in ``/readyz`` detail; a failing probe makes the
proxy not ready only when ``fail_ready`` is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from proxy.context import Route
from proxy.errors import ProxyError
from proxy.handlers.whole import sites
from proxy.probes.config import Probe, ProbesFile, load_probes
from proxy.rules.loader import RuleLoadError
from proxy.runtime import Runtime

log = logging.getLogger("guardrail.probes")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    probe: str
    model: str
    ok: bool
    outcome: str  # pass | fail | error
    detail: str
    answer: str  # first 200 characters (probe answers, not user data)
    latency_ms: float
    checked_at: float


class ProbeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["probe", "model"]
        self.success = Gauge(
            "guardrail_probe_success", "1 when the last probe answer matched.", labels, registry=registry
        )
        self.runs = Counter("guardrail_probe_runs", "Probe runs by outcome.", [*labels, "outcome"], registry=registry)
        self.latency = Histogram("guardrail_probe_latency_seconds", "Probe round trip.", labels, registry=registry)


class ProbeRunner:
    def __init__(self, rt: Runtime, config: ProbesFile, registry: CollectorRegistry) -> None:
        self.rt = rt
        self.config = config
        self.metrics = ProbeMetrics(registry)
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self.runs = 0
        self.config_error: str | None = None
        self._rules_version: str | None = None

    def targets(self, probe: Probe) -> list[str]:
        rules = self.rt.rules.current
        if rules is None:
            return []
        if probe.models:
            return list(dict.fromkeys(rules.keyring.pin(m) for m in probe.models))
        return sorted({m for m in rules.keyring.aliases.values() if "embed" not in m})

    async def _one(self, probe: Probe, model: str) -> ProbeResult:
        t0 = time.perf_counter()
        up = self.rt.upstream
        answer, outcome, detail = "", "error", ""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                body = json.dumps(probe.body(model)).encode()
                resp = await up.send("POST", "/chat/completions", body, up.headers_for(None))
                try:
                    payload = await resp.json(content_type=None) if resp.status < 400 else None
                finally:
                    resp.release()
            if payload is None or not isinstance(payload, dict):
                detail = f"upstream answered HTTP {resp.status}"
            else:
                answer = "\n".join(s.text for s in sites(Route.CHAT, payload))
                ok, detail = await probe.expect.check(answer, self.rt.services)
                outcome = "pass" if ok else "fail"
        except TimeoutError:
            detail = f"no answer within {self.config.timeout_s} s"
        except ProxyError as exc:
            detail = exc.message
        except (aiohttp.ClientError, ValueError) as exc:
            detail = type(exc).__name__
        elapsed = time.perf_counter() - t0
        self.metrics.success.labels(probe.id, model).set(1 if outcome == "pass" else 0)
        self.metrics.runs.labels(probe.id, model, outcome).inc()
        self.metrics.latency.labels(probe.id, model).observe(elapsed)
        if outcome != "pass":
            log.warning("probe failed", extra={"probe": probe.id, "model": model, "outcome": outcome, "detail": detail})
        return ProbeResult(
            probe.id, model, outcome == "pass", outcome, detail, answer[:200], round(elapsed * 1000, 2), time.time()
        )

    def _maybe_reload(self) -> None:
        rules = self.rt.rules.current
        version = rules.version if rules is not None else None
        if version == self._rules_version:
            return
        self._rules_version = version
        try:
            self.config = load_probes(self.rt.settings.rules_dir)
            self.config_error = None
        except RuleLoadError as exc:  # keep the last good probes, and say so
            self.config_error = str(exc)
            log.error("probes.yaml rejected; previous probes keep running", extra={"error": str(exc)})

    async def run_once(self) -> list[ProbeResult]:
        self._maybe_reload()
        pairs = [(p, m) for p in self.config.probes for m in self.targets(p)]
        results = await asyncio.gather(*(self._one(p, m) for p, m in pairs))
        wanted = set()
        for r in results:
            self.results[(r.probe, r.model)] = r
            wanted.add((r.probe, r.model))
        for key in set(self.results) - wanted:  # probes or models removed since
            del self.results[key]
        self.runs += 1
        return list(results)

    async def loop(self) -> None:
        while True:
            self._maybe_reload()
            if self.config.enabled:
                try:
                    await self.run_once()
                except Exception:
                    log.exception("probe round failed")
            await asyncio.sleep(self.config.interval_s)

    async def ready_check(self) -> dict[str, Any]:
        failing = sorted(f"{p}@{m}" for (p, m), r in self.results.items() if not r.ok)
        return {
            "ok": not (self.config.fail_ready and failing),
            "enabled": self.config.enabled,
            "rounds": self.runs,
            "failing": failing,
            "config_error": self.config_error,
            "results": [asdict(r) for r in self.results.values()],
        }
