"""System-prompt leakage: long verbatim overlaps between the answer and the system prompt.

The system prompt is normalised (case-folded, whitespace collapsed) and cut into
character shingles once per distinct prompt (cached). The answer is normalised the same
way as it streams; each new character costs one set lookup, and a run of consecutive
matching shingles is an overlap whose length is scored. The planted canary line is
left out of the prompt (the canary signal covers it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from proxy.context import RequestContext
from proxy.guards.output.canary import EXTRA as CANARY
from proxy.guards.output.config import CanaryConfig, LeakageConfig
from proxy.guards.output.signals import BaseSignal
from proxy.messages import prompt_parts
from proxy.verdicts import Hit

RULE = "output.leakage"


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def shingles(text: str, k: int) -> frozenset[int]:
    norm = normalise(text)
    return frozenset(hash(norm[i : i + k]) for i in range(max(0, len(norm) - k + 1)))


class LeakageSignal(BaseSignal):
    def __init__(self, grams: frozenset[int], cfg: LeakageConfig) -> None:
        self.grams = grams
        self.cfg = cfg
        self.k = cfg.shingle
        self._tail = ""  # the last k-1 normalised characters
        self._space = True  # the previous normalised character was a space (or start)
        self._run = 0  # consecutive matching shingles ending at the last character
        self._best = 0
        self._reported = 0.0
        self._seen = 0  # raw characters fed

    def _score(self, overlap: int) -> float:
        c = self.cfg
        if overlap < c.min_chars:
            return 0.0
        if c.full_chars == c.min_chars:
            return 1.0
        frac = min(1.0, (overlap - c.min_chars) / (c.full_chars - c.min_chars))
        return c.score_at_min + (1.0 - c.score_at_min) * frac

    def feed(self, text: str) -> list[Hit]:
        self._seen += len(text)
        chars: list[str] = []
        for ch in text.casefold():
            if ch.isspace():
                if not self._space:
                    chars.append(" ")
                self._space = True
            else:
                chars.append(ch)
                self._space = False
        if not chars:
            return []
        buf = self._tail + "".join(chars)
        k, grams, run, best = self.k, self.grams, self._run, self._best
        for end in range(len(self._tail) + 1, len(buf) + 1):
            if end >= k and hash(buf[end - k : end]) in grams:
                run += 1
                best = max(best, run)
            else:
                run = 0
        self._run, self._best = run, best
        self._tail = buf[-(k - 1) :]
        overlap = best + k - 1 if best else 0
        score = self._score(overlap)
        if score <= self._reported:
            return []
        self._reported = score
        return [Hit(RULE, score, "leakage", None, "output", f"overlap_chars={overlap}")]

    async def finish(self, text: str) -> list[Hit]:
        return []


@dataclass
class LeakageSignals:
    cfg: LeakageConfig
    canary: CanaryConfig
    name: str = "leakage"
    cache_size: int = 256
    _cache: OrderedDict[str, frozenset[int]] = field(default_factory=OrderedDict)
    _lock: Lock = field(default_factory=Lock)

    def _grams(self, system: str) -> frozenset[int]:
        with self._lock:
            got = self._cache.get(system)
            if got is not None:
                self._cache.move_to_end(system)
                return got
        grams = shingles(system, self.cfg.shingle)
        with self._lock:
            self._cache[system] = grams
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return grams

    def open(self, ctx: RequestContext) -> LeakageSignal | None:
        if not self.cfg.enabled:
            return None
        texts = [p.text for p in prompt_parts(ctx.route, ctx.body) if p.surface == "system"]
        token = ctx.extras.get(CANARY)
        if isinstance(token, str):
            line = self.canary.instruction.format(canary=token)
            texts = [t.replace(line, "") for t in texts]
        system = "\n".join(t for t in texts if t.strip())
        if len(system) < self.cfg.min_prompt_chars:
            return None
        return LeakageSignal(self._grams(system), self.cfg)
