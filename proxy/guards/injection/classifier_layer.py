"""The classifier layer: the learned heads (``heads.py``) run over a text's 1,000-character
windows or its segments, and the fusions over the other layers' findings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.guards.injection.fuse import LayerHit
from proxy.guards.injection.heads import FUSION, HEADS, INPUT_LAYERS, load_head, logit, sigmoid

if TYPE_CHECKING:
    from proxy.guards.injection.rules import InjectionRule

LEX_WINDOW = 1000
LEX_STEP = 800

Span = tuple[int, int]


def lex_windows(n: int) -> list[Span]:
    if n <= LEX_WINDOW:
        return [(0, n)]
    starts = range(0, max(1, n - LEX_WINDOW + LEX_STEP), LEX_STEP)
    return [(s, min(n, s + LEX_WINDOW)) for s in starts]


class ClassifierLayer:
    """The word and char heads (cheap, ``scan``) and the fusions (``fuse``, after the other layers)."""

    name = "classifier"

    def __init__(self, rules: tuple[InjectionRule, ...], rules_dir: Path | None, window_penalty: float = 0.0) -> None:
        """``window_penalty``: on a text of n > 1 windows, each head's logit is lowered by
        that x ln(n), so that the best of many windows is not n chances at a false positive."""
        self.window_penalty = window_penalty
        chosen = [r for r in rules if r.kind == "classifier"]
        base = rules_dir or Path(".")
        heads = {r.id: load_head(base, r.model) for r in chosen}
        self.heads = [(r, heads[r.id]) for r in chosen if heads[r.id].format in HEADS and r.reads == "windows"]
        # heads that read a document's segments (``reads: segments``): never a fusion input or the gate
        self.segment_heads = [(r, heads[r.id]) for r in chosen if heads[r.id].format in HEADS and r.reads == "segments"]
        self.fusions = [(r, heads[r.id]) for r in chosen if heads[r.id].format == FUSION]

    def scan(self, text: str, surface: str = "user") -> list[LayerHit]:
        """The heads on a view's folded (or leet-folded) text; spans in its coordinates."""
        return self.scan_windows(text, surface)[0]

    def scan_windows(self, text: str, surface: str = "user") -> tuple[list[LayerHit], list[tuple[Span, float]]]:
        """``scan``'s hits, and each window with the best probability any head gave it
        (what the semantic gate reads, window by window)."""
        hits: list[LayerHit] = []
        wins = lex_windows(len(text))
        per_window = [0.0] * len(wins)
        shift = self.window_penalty * math.log(len(wins)) if len(wins) > 1 else 0.0
        for rule, head in self.heads:
            if surface not in rule.surfaces or not text.strip():
                continue
            best = (0.0, (0, 0))
            for i, (a, b) in enumerate(wins):
                p, (s, e) = head.score(text[a:b])
                if shift and p > 0:
                    p = sigmoid(logit(p) - shift)
                per_window[i] = max(per_window[i], p)
                if p > best[0]:
                    best = (p, (a + s, a + e))
            hits.append(LayerHit(rule, best[0], self.name, best[1], f"p={best[0]:.3f}"))
        return hits, list(zip(wins, per_window, strict=True))

    def reads_segments(self, surface: str) -> bool:
        return any(surface in rule.surfaces for rule, _ in self.segment_heads)

    def scan_segments(self, text: str, spans: list[Span], surface: str = "user") -> list[LayerHit]:
        """The segment heads on each of ``spans`` of a view's text (the whole text when there
        are none), each read in 1,000-character windows if longer; a hit's span is its best piece."""
        hits: list[LayerHit] = []
        for rule, head in self.segment_heads:
            if surface not in rule.surfaces or not text.strip():
                continue
            best, where, seen = 0.0, (0, 0), set()
            # a segment longer than a window (a line with no sentence end) is read in windows
            pieces = [(a + x, a + y) for a, b in spans or [(0, len(text))] for x, y in lex_windows(b - a)]
            for a, b in pieces:
                piece = text[a:b]
                if piece in seen:  # a repeated line (a footer, a signature) is read once
                    continue
                seen.add(piece)
                p, _ = head.score(piece)
                if p > best:
                    best, where = p, (a, b)
            hits.append(LayerHit(rule, best, self.name, where, f"p={best:.3f} on its best segment (the span)"))
        return hits

    def gate_score(self, hits: list[LayerHit], surface: str = "user") -> float | None:
        """The best head probability among ``hits`` (None: no head covers ``surface``, so the
        gate must not hold the semantic layer back there)."""
        if not any(surface in rule.surfaces for rule, _ in self.heads):
            return None
        return max((h.score for h in hits if h.layer == self.name), default=0.0)

    def fuse(self, hits: list[LayerHit], semantic_ran: bool, surface: str = "user") -> list[LayerHit]:
        """The fusions over one view's hits (span: the strongest hit of the input that added most)."""
        by_layer: dict[str, LayerHit] = {}
        for h in hits:
            key = "semantic-exemplar" if h.layer == "semantic" and h.rule.kind == "exemplar" else h.layer
            if key not in INPUT_LAYERS:
                continue
            for k in (key, f"{key}:{h.rule.id}"):  # the best of the layer, and each rule's own
                if k not in by_layer or h.score > by_layer[k].score:
                    by_layer[k] = h
        values: dict[str, float | None] = {k: h.score for k, h in by_layer.items()}
        if not semantic_ran:
            values.pop("semantic-exemplar", None)
        out: list[LayerHit] = []
        for rule, head in self.fusions:
            if surface not in rule.surfaces or not values:
                continue
            p, top = head.fuse(values)
            span = by_layer[top].span if top in by_layer else (0, 0)
            used = [i.key for i in head.inputs if values.get(i.key) is not None]
            detail = " ".join(f"{k}={values[k]:.3f}" for k in used)
            out.append(LayerHit(rule, p, "fusion", span, f"p={p:.3f} {detail}"))
        return out
