"""The output anomaly guard: signals → one score → flag, refuse or block (``rules/output.yaml``).

Each signal's hits are weighted and combined noisy-or (``1 - Π(1 - w·s)``), so one strong
signal decides and weak ones add up. The strongest action whose threshold the score
reaches is taken: ``flag`` (the answer goes on; non-stream answers carry
``x-guardrail-output-score``), ``refuse`` (a canned answer, ``finish_reason:
content_filter``) or ``block``. Every hit keeps its rule id, score and detail, so a
decision explains itself in logs and headers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from proxy.context import RequestContext
from proxy.guards.output.canary import CanarySignals
from proxy.guards.output.config import OutputFile, load
from proxy.guards.output.drift import DriftSignals
from proxy.guards.output.exfil import ExfilSignals
from proxy.guards.output.injection_echo import InjectionEchoSignals
from proxy.guards.output.leakage import LeakageSignals
from proxy.guards.output.pii_signal import PiiSignals
from proxy.guards.output.signals import Signal, SignalFactory
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from proxy.verdicts import Allow, Block, Flag, Hit, Verdict, refusal

SCORE_HEADER = "x-guardrail-output-score"


def combine(hits: list[Hit], weights: dict[str, float]) -> float:
    keep = 1.0
    for h in hits:
        keep *= 1.0 - min(1.0, max(0.0, h.score * weights.get(h.layer, 1.0)))
    return 1.0 - keep


class AnomalyScanner:
    def __init__(self, guard: AnomalyGuard, ctx: RequestContext, signals: list[Signal]) -> None:
        self.guard = guard
        self.ctx = ctx
        self.signals = signals
        self.hits: list[Hit] = []
        self.score = 0.0

    def _verdict(self, new: list[Hit]) -> Verdict:
        name = self.guard.name
        if not new:
            return Allow(name)
        self.hits.extend(new)
        self.score = combine(self.hits, self.guard.weights)
        cfg = self.guard.cfg
        if cfg.score_header:
            prev = float(self.ctx.response_headers.get(SCORE_HEADER, "0"))
            self.ctx.response_headers[SCORE_HEADER] = f"{max(prev, self.score):.2f}"
        action = cfg.action_for(self.score)
        hits = tuple(self.hits)
        if action is None:
            return Allow(name, hits)
        if action.action == "block":
            return Block(name, action.message, hits, status=400, code="content_filter")
        if action.action == "refuse":
            return refusal(name, hits, action.message)
        return Flag(name, hits, f"output score {self.score:.2f}")

    def feed(self, text: str) -> Verdict:
        new: list[Hit] = []
        for s in self.signals:
            new.extend(s.feed(text))
        return self._verdict(new)

    async def finish(self, text: str) -> Verdict:
        # The signals' end-of-stream work (PII analysis, injection echo, drift embedding) is
        # started together: each waits on its own executor job, so they overlap when the
        # executor has more than one free core.
        found = await asyncio.gather(*(s.finish(text) for s in self.signals))
        return self._verdict([h for hits in found for h in hits])

    def transform(self, text: str) -> str:
        for s in self.signals:
            text = s.transform(text)
        return text

    def release_point(self, pending: str) -> int:
        cut = len(pending)
        for s in self.signals:
            cut = min(cut, s.release_point(pending[:cut]))
        return cut


@dataclass(frozen=True, slots=True)
class AnomalyGuard:
    cfg: OutputFile
    factories: tuple[SignalFactory, ...]
    weights: dict[str, float]
    name: str = "output_anomaly"

    def open(self, ctx: RequestContext) -> AnomalyScanner | None:
        signals = [s for f in self.factories if (s := f.open(ctx)) is not None]
        return AnomalyScanner(self, ctx, signals) if signals else None


def _check_examples(path: object, exfil: ExfilSignals, cfg: OutputFile, weights: dict[str, float]) -> None:
    """An example "matches" when the exfil hits alone reach the lowest action's threshold."""
    floor = min(a.score for a in cfg.actions)
    for text in exfil.cfg.examples.match:
        if combine(exfil.scan(text), weights) < floor:
            raise RuleLoadError(str(path), f"example {text!r} should match but does not", rule_id="output.exfil")
    for text in exfil.cfg.examples.no_match:
        if combine(exfil.scan(text), weights) >= floor:
            raise RuleLoadError(str(path), f"example {text!r} should not match but does", rule_id="output.exfil")


def build(bc: BuildContext) -> AnomalyGuard:
    path, cfg = load(bc.rules_dir, str(bc.options.get("file", "output.yaml")))
    exfil = ExfilSignals(cfg.exfil)
    factories: tuple[SignalFactory, ...] = (
        CanarySignals(cfg.canary),
        LeakageSignals(cfg.leakage, cfg.canary),
        exfil,
        InjectionEchoSignals.create(cfg.injection_echo, bc),
        DriftSignals(cfg.drift, bc.services),
        PiiSignals.create(cfg.pii, bc, path),
    )
    w = cfg.weights
    weights = {
        "canary": w.canary,
        "leakage": w.leakage,
        "exfil": w.exfil,
        "injection": w.injection_echo,
        "drift": w.drift,
        "pii": w.pii,
    }
    _check_examples(path, exfil, cfg, weights)
    return AnomalyGuard(cfg, factories, weights)
