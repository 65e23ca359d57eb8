"""Drift: answers unlike the usual ones for this route and model.

Per route+model a rolling baseline (EMA of the unit embedding centroid, of log-length and
its variance) is kept in ``services.state`` when that store offers async ``get``/``set``,
else in process (bounded). Once ``min_samples`` answers have been seen, an answer far
from the centroid, of outlying length, or carrying a long base64/hex blob is evidence.
Only answers without drift evidence update the baseline. Runs at ``finish`` (the
embedding is ~10-30 ms, off the event loop); feed costs nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from proxy.context import RequestContext
from proxy.guards.output.config import DriftConfig
from proxy.guards.output.signals import BaseSignal
from proxy.guards.output.vectors import encode, shared_model
from proxy.verdicts import Hit

log = logging.getLogger("guardrail.output")
KEY = "guardrail:v1:output-baseline:{route}:{model}"


@dataclass
class Baseline:
    n: int = 0
    centroid: list[float] | None = None
    mu: float = 0.0  # EMA of log(1 + length)
    var: float = 0.0

    def update(self, vec: np.ndarray | None, length: int, alpha: float) -> None:
        w = max(alpha, 1.0 / (self.n + 1))
        x = math.log1p(length)
        d = x - self.mu
        self.mu += w * d
        self.var = (1 - w) * (self.var + w * d * d)
        if vec is not None:
            c = vec if self.centroid is None else (1 - w) * np.asarray(self.centroid, dtype=np.float32) + w * vec
            self.centroid = [float(v) for v in c]
        self.n += 1


class InProcessBaselines:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: OrderedDict[str, Baseline] = OrderedDict()

    async def get(self, key: str) -> Baseline:
        b = self._data.get(key)
        if b is None:
            b = self._data[key] = Baseline()
            while len(self._data) > self.limit:
                self._data.popitem(last=False)
        self._data.move_to_end(key)
        return b

    async def put(self, key: str, b: Baseline) -> None:
        self._data[key] = b


class StateBaselines:
    """Baselines in the shared state store (survive restarts, shared by replicas).

    Drift is weak evidence, so an unreachable store must not fail the answer (the
    output guard fails closed on errors): while the store is down the baselines of this
    process are used and updated instead, and the failure is logged once per outage.
    """

    def __init__(self, state: Any, limit: int = 1000) -> None:
        self.state = state
        self.local = InProcessBaselines(limit)
        self._failing = False

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning(
                "drift baselines: state store unavailable, using in-process ones",
                extra={"error": type(exc).__name__},
            )
        self._failing = True

    async def get(self, key: str) -> Baseline:
        try:
            raw = await self.state.get(key)
        except Exception as exc:  # fail open: see the class docstring
            self._failed(exc)
            return await self.local.get(key)
        self._failing = False
        if not raw:
            return Baseline()
        return Baseline(**json.loads(raw))

    async def put(self, key: str, b: Baseline) -> None:
        await self.local.put(key, b)
        try:
            await self.state.set(key, json.dumps(b.__dict__))
        except Exception as exc:  # fail open
            self._failed(exc)


def pick_store(services: Any, limit: int) -> InProcessBaselines | StateBaselines:
    state = getattr(services, "state", None)
    get, put = getattr(state, "get", None), getattr(state, "set", None)
    if state is not None and asyncio.iscoroutinefunction(get) and asyncio.iscoroutinefunction(put):
        return StateBaselines(state, limit)
    return InProcessBaselines(limit)


class DriftSignal(BaseSignal):
    def __init__(self, owner: DriftSignals, key: str) -> None:
        self.owner = owner
        self.key = key

    async def finish(self, text: str) -> list[Hit]:
        cfg = self.owner.cfg
        if not text.strip():
            return []
        hits: list[Hit] = []
        blob = self.owner.blob.search(text)
        if blob:
            hits.append(Hit("output.drift.format", cfg.format_score, "drift", blob.span(), "output", "blob"))
        vec = await self.owner.vector(text)
        base = await self.owner.store.get(self.key)
        if base.n >= cfg.min_samples:
            z = (math.log1p(len(text)) - base.mu) / max(math.sqrt(base.var), cfg.length_sd_floor)
            if abs(z) >= cfg.length_z:
                hits.append(Hit("output.drift.length", cfg.length_score, "drift", None, "output", f"z={z:.1f}"))
            if vec is not None and base.centroid is not None:
                c = np.asarray(base.centroid, dtype=np.float32)
                dist = 1.0 - float(vec @ c) / max(float(np.linalg.norm(c)), 1e-6)
                if dist >= cfg.distance:
                    hits.append(
                        Hit("output.drift.embedding", cfg.embed_score, "drift", None, "output", f"distance={dist:.2f}")
                    )
        if not hits:
            base.update(vec, len(text), cfg.alpha)
            await self.owner.store.put(self.key, base)
        return hits


@dataclass
class DriftSignals:
    cfg: DriftConfig
    services: Any = None
    name: str = "drift"
    store: InProcessBaselines | StateBaselines = field(init=False)
    blob: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.store = pick_store(self.services, self.cfg.max_baselines)
        n = self.cfg.blob_chars
        self.blob = re.compile(rf"[A-Za-z0-9+/]{{{n},}}={{0,2}}|[0-9a-fA-F]{{{n},}}")

    async def vector(self, text: str) -> np.ndarray | None:
        if not self.cfg.embed or self.services is None:
            return None
        loop = asyncio.get_running_loop()

        def work() -> np.ndarray | None:
            model = shared_model(self.services)
            return None if model is None else encode(model, [text[:2000]])[0]

        return await loop.run_in_executor(self.services.cpu, work)

    def open(self, ctx: RequestContext) -> DriftSignal | None:
        if not self.cfg.enabled:
            return None
        return DriftSignal(self, KEY.format(route=ctx.route.value, model=ctx.model))
