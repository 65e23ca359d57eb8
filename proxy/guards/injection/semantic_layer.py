"""Layer 3: semantic similarity with the shared MiniLM model against rule exemplars.

Exemplar vectors (and the vectors of each rule's ``false_positives``, used as negative
anchors) are computed once per ruleset through ``Embedder.cached`` (on-disk cache keyed
by model and text). A text is cut into overlapping windows of the folded text; each
window is embedded once and kept in an LRU cache keyed by its hash, so a resent
conversation, or the same tool output seen again, costs nothing.

Score of a rule on a window = mean cosine to the rule's ``TOP_K`` closest exemplars,
minus ``PENALTY`` x the mean cosine to the ``TOP_K`` closest known-benign anchors (the
``false_positives`` of every exemplar rule, pooled): a text that looks like known benign
prompts as much as like attacks scores low. k and the penalty were chosen by 5-fold
cross-validation on the training split only (see docs/injection-detector.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from proxy.guards.injection.fuse import LayerHit
from proxy.guards.injection.rules import InjectionRule

HEAD = 1000  # the first window: about what the model reads of a text (256 word pieces)
WINDOW = 1000
STEP = 800
MAX_WINDOWS = 16
TOP_K = 3  # a rule's similarity = mean of its k closest exemplars (same for anchors)
PENALTY = 0.6  # weight of the similarity to known benign texts (anchors)


def windows(text: str, head: int = HEAD, size: int = WINDOW, step: int = STEP) -> list[tuple[int, int]]:
    """The head of the text, then overlapping windows over the rest (cut at spaces)."""
    spans = [(0, min(len(text), head))]
    if len(text) <= head:
        return spans
    start = head - (size - step)
    while start < len(text) and len(spans) <= MAX_WINDOWS:
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > 0 else end
        spans.append((start, end))
        if end >= len(text):
            break
        nxt = text.find(" ", start + step, end)
        start = nxt + 1 if nxt > 0 else start + step
    if spans[-1][1] < len(text):  # over the cap: the tail is always looked at
        spans.append((max(0, len(text) - size), len(text)))
    return spans


def _topk_mean(sims: np.ndarray, k: int) -> np.ndarray:
    if sims.shape[1] <= k:
        return sims.mean(axis=1)
    return np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)


def rule_texts(rules: tuple[InjectionRule, ...]) -> tuple[list[str], list[str]]:
    """(exemplars in rule order, pooled unique false positives) of the exemplar rules."""
    chosen = [r for r in rules if r.kind == "exemplar"]
    ex = [e for r in chosen for e in r.exemplars]
    fp = list(dict.fromkeys(t for r in chosen for t in r.false_positives))
    return ex, fp


def cache_name(model_id: str, texts: list[str]) -> str:
    """The file name ``Embedder.cached`` uses for ``texts`` (same digest)."""
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    return f"{digest.hexdigest()[:32]}.npy"


def fixed_vectors(embedder: Any, texts: list[str], shipped: Path | None) -> np.ndarray:
    """Vectors of rule texts: from ``shipped`` (``rules/injection/.vectors``) when it holds
    them, else through ``Embedder.cached`` (the per-user disk cache)."""
    if not texts:
        return np.zeros((0, 384), np.float32)
    model_id = str(getattr(embedder, "model_id", ""))
    if shipped is not None and (shipped / cache_name(model_id, texts)).is_file():
        return np.asarray(embedder.cached(texts, shipped), dtype=np.float32)
    return np.asarray(embedder.cached(texts), dtype=np.float32)


class SemanticLayer:
    name = "semantic"

    def __init__(
        self, rules: tuple[InjectionRule, ...], embedder: Any, *, penalty: float = PENALTY, k: int = TOP_K,
        cache_size: int = 8192, vectors_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.rules = tuple(r for r in rules if r.kind == "exemplar")
        self.embedder = embedder
        self.penalty = penalty
        self.k = k
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        ex, fp = rule_texts(self.rules)
        self._ex_owner = np.array([i for i, r in enumerate(self.rules) for _ in r.exemplars], dtype=np.int32)
        self._ex = fixed_vectors(embedder, ex, vectors_dir)
        self._fp = fixed_vectors(embedder, fp, vectors_dir)

    def __len__(self) -> int:
        return len(self.rules)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts`` (window texts), from the LRU cache where possible."""
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        out: list[np.ndarray | None] = []
        with self._lock:
            for k in keys:
                v = self._cache.get(k)
                if v is not None:
                    self._cache.move_to_end(k)
                out.append(v)
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            fresh = self.embedder.encode([texts[i] for i in missing])
            with self._lock:
                for j, i in enumerate(missing):
                    out[i] = fresh[j]
                    self._cache[keys[i]] = fresh[j]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([v for v in out if v is not None]) if out else np.zeros((0, 384), np.float32)

    def scores(self, vecs: np.ndarray) -> np.ndarray:
        """(windows, rules) matrix of similarity scores, benign anchors subtracted."""
        att = np.full((len(vecs), len(self.rules)), -1.0, dtype=np.float32)
        if len(self._ex):
            sims = vecs @ self._ex.T
            for r in range(len(self.rules)):
                cols = self._ex_owner == r
                if cols.any():
                    att[:, r] = _topk_mean(sims[:, cols], self.k)
        if len(self._fp):
            att -= self.penalty * _topk_mean(vecs @ self._fp.T, self.k)[:, None]
        return att

    def scan(
        self, text: str, surface: str = "user", budget: int | None = None,
        rank: Callable[[tuple[int, int]], float] | None = None, floor: float | None = None,
    ) -> list[LayerHit]:  # fmt: skip
        """Best score per rule over the windows of ``text``.

        With ``floor``, only the windows ``rank`` rates at least that are embedded (the
        best one if none is), at most ``budget`` of them, best first. Without it, at most
        ``budget`` windows: the head and those ``rank`` rates highest.
        """
        return self.scan_counted(text, surface, budget, rank, floor)[0]

    def scan_counted(
        self, text: str, surface: str = "user", budget: int | None = None,
        rank: Callable[[tuple[int, int]], float] | None = None, floor: float | None = None,
    ) -> tuple[list[LayerHit], int]:  # fmt: skip
        """``scan``'s hits and how many windows it read (cached or not)."""
        active = [i for i, r in enumerate(self.rules) if surface in r.surfaces]
        if not active or not text.strip():
            return [], 0
        spans = windows(text)
        if floor is not None and rank is not None:
            ranked = sorted(((rank(sp), sp) for sp in spans), key=lambda rs: -rs[0])
            chosen = [sp for r, sp in ranked if r >= floor] or [ranked[0][1]]
            spans = sorted(chosen[:budget] if budget is not None else chosen)
        elif budget is not None and len(spans) > budget:  # the head, then the windows most worth a look
            rest = sorted(spans[1:], key=lambda sp: -(rank(sp) if rank else 0))
            spans = [spans[0], *sorted(rest[: max(0, budget - 1)])]
        vecs = self.embed([text[a:b] for a, b in spans])
        mat = self.scores(vecs)
        hits: list[LayerHit] = []
        for r in active:
            w = int(np.argmax(mat[:, r]))
            score = float(mat[w, r])  # negative scores too: fusion rules read them
            hits.append(LayerHit(self.rules[r], score, self.name, spans[w], f"cos={score:.3f}"))
        return hits, len(spans)
