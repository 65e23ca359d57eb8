"""Fusing layer hits into one verdict: a risk score, rule ids, layer and span per hit.

Each layer reports a raw score on its own scale (regex 1.0, fuzzy ratio 0-1, semantic
cosine). ``risk`` maps a raw score onto one scale with the rule's threshold at 0.5, so
scores from different layers and rules compare: below the threshold 0-0.5, at or above
it 0.5-1. A text's risk is the highest risk of its hits; a hit is a rule firing when
its risk is ≥ 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.verdicts import Allow, Block, Flag, Hit, Verdict, refusal

if TYPE_CHECKING:
    from proxy.guards.injection.rules import InjectionRule

ACTION_ORDER = ("block", "refuse", "flag", "monitor")


@dataclass(frozen=True, slots=True)
class LayerHit:
    """What a layer found in one view (span in that view's folded coordinates)."""

    rule: InjectionRule
    score: float
    layer: str
    span: tuple[int, int]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired (or nearly fired) on one text, with its span in the original text."""

    rule: InjectionRule
    raw: float
    risk: float
    layer: str
    span: tuple[int, int] | None
    via: str  # "" for the text itself, else the decoding it was found in
    detail: str = ""

    @property
    def fired(self) -> bool:
        return self.risk >= 0.5

    def hit(self, surface: str) -> Hit:
        detail = f"via={self.via}" if self.via else ""
        return Hit(self.rule.id, round(self.risk, 3), self.layer, self.span, surface, detail)


def risk(raw: float, threshold: float) -> float:
    if threshold >= 1.0:
        return 1.0 if raw >= 1.0 else 0.5 * raw
    if raw >= threshold:
        return 0.5 + 0.5 * (raw - threshold) / (1.0 - threshold)
    return max(0.0, 0.5 * raw / threshold)


def best_per_rule(findings: list[Finding]) -> list[Finding]:
    best: dict[str, Finding] = {}
    for f in findings:
        if f.rule.id not in best or f.risk > best[f.rule.id].risk:
            best[f.rule.id] = f
    return sorted(best.values(), key=lambda f: -f.risk)


def text_risk(findings: list[Finding]) -> float:
    return max((f.risk for f in findings), default=0.0)


def verdict(guard: str, fired: Sequence[tuple[Finding, str]]) -> Verdict:
    """One verdict for a request from the findings that fired (each with its surface)."""
    if not fired:
        return Allow(guard)
    ordered = sorted(fired, key=lambda fs: (ACTION_ORDER.index(fs[0].rule.action), -fs[0].risk))
    hits = tuple(f.hit(s) for f, s in ordered)
    top = ordered[0][0]
    if top.rule.action == "block":
        return Block(guard, top.rule.message, hits)
    if top.rule.action == "refuse":
        return refusal(guard, hits, top.rule.message)
    label = "monitor" if top.rule.action == "monitor" else "flag"
    return Flag(guard, hits, label)
