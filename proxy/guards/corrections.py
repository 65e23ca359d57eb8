"""Known-bad answers (``rules/corrections/*.yaml``): never given, replaced by their correction.

Each rule lists answers the model must never give (e.g. an invented return policy), the
correction to serve instead and why. While an answer streams, sentences that contain a
rule's keywords are held back and, once complete, compared fuzzily (rapidfuzz
``partial_ratio`` over a bounded tail) with the bad answers; at the end the whole answer
is also compared semantically (shared embedding model, sentence windows, off the
loop). A match ends the answer with a ``Substitute`` carrying the correction.

Pipeline option ``hold: sentence`` holds every unfinished sentence back (a streamed answer
then moves sentence by sentence, and a bad first sentence is never seen at all); the
default ``keyword`` holds only sentences from the point a keyword starts to appear.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from rapidfuzz import fuzz

from proxy.context import RequestContext
from proxy.guards.approved import Examples, Scope, normalise
from proxy.guards.output.vectors import encode, shared_model
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError, Strict, load_file, rule_files
from proxy.verdicts import Allow, Hit, Substitute, Verdict

HEADER = "x-guardrail-correction-id"
SENTENCE_END = re.compile(r"[.!?\n]")


class Correction(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: int = Field(default=1, ge=1)
    status: Literal["experimental", "test", "stable"] = "experimental"
    severity: Literal["low", "medium", "high", "critical"] = "high"
    owner: str = ""
    bad_answers: list[str] = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)  # pre-filter: a sentence must contain one
    correction: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    threshold: float = Field(default=0.82, gt=0, le=1)  # cosine similarity
    fuzzy_threshold: float = Field(default=85, gt=0, le=100)  # partial_ratio on normalised text
    scope: Scope = Field(default_factory=Scope)
    examples: Examples = Field(default_factory=Examples)


class CorrectionsFile(Strict):
    schema_version: Literal[1]
    corrections: list[Correction] = Field(default_factory=list)


def load_corrections(directory: Path) -> tuple[Correction, ...]:
    seen: set[str] = set()
    out: list[Correction] = []
    for path in rule_files(directory):
        for rule in load_file(CorrectionsFile, path).corrections:
            if rule.id in seen:
                raise RuleLoadError(path, "duplicate id", rule_id=rule.id, field="id")
            seen.add(rule.id)
            out.append(rule)
    return tuple(out)


def sentences(text: str, limit: int = 24) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    windows = parts + [f"{a} {b}" for a, b in itertools.pairwise(parts)]
    return windows[:limit]


class CorrectionScanner:
    """Watches one output channel for the known-bad claims of the rules that apply."""

    def __init__(self, guard: CorrectionsGuard, ctx: RequestContext, rules: list[int]) -> None:
        self.guard = guard
        self.ctx = ctx
        self.rules = rules
        self.tail = ""  # the current sentence and the one before (bounded)
        self.keep = max(len(b) for i in rules for b in guard.rules[i].bad_answers) * 2
        self.words = tuple({k for i in rules for k in guard.keywords[i]})
        self.overlap = max(len(k) for k in self.words) - 1
        self.fed = 0  # characters fed so far
        self.sentence_at = 0  # absolute start of the current (unfinished) sentence
        self.keyword_in_sentence = False

    def _fuzzy(self, text: str) -> tuple[int, float, str] | None:
        norm = normalise(text)
        for i in self.rules:
            rule = self.guard.rules[i]
            if not any(k in norm for k in self.guard.keywords[i]):
                continue
            for bad in self.guard.norm_bad[i]:
                score = fuzz.partial_ratio(bad, norm) if len(norm) >= len(bad) * 0.6 else 0.0
                if score >= rule.fuzzy_threshold:
                    return i, score / 100, "fuzzy"
        return None

    def _verdict(self, found: tuple[int, float, str] | None) -> Verdict:
        if found is None:
            return Allow(self.guard.name)
        i, score, layer = found
        rule = self.guard.rules[i]
        self.ctx.response_headers[HEADER] = rule.id
        hit = Hit(rule.id, round(score, 3), layer, None, "output", rule.reason[:200])
        return Substitute(self.guard.name, rule.correction, (hit,), "stop", {HEADER: rule.id})

    def feed(self, text: str) -> Verdict:
        before = self.tail
        self.tail = (before + text)[-self.keep :]
        start = self.fed
        self.fed += len(text)
        ends = [m.end() for m in SENTENCE_END.finditer(text)]
        if ends:
            self.sentence_at = start + ends[-1]
            self.keyword_in_sentence = self._has_keyword(text[ends[-1] :])
            return self._verdict(self._fuzzy(self.tail))
        look = before[-self.overlap :] if self.fed - len(text) > self.sentence_at else ""
        self.keyword_in_sentence = self.keyword_in_sentence or self._has_keyword(
            (look + text)[-len(text) - self.overlap :]
        )
        return Allow(self.guard.name)

    def _has_keyword(self, text: str) -> bool:
        low = text.casefold()
        return any(k in low for k in self.words)

    def _keyword_starts_at_end(self) -> bool:
        low = self.tail[-self.overlap :].casefold()
        return any(low.endswith(k[:n]) for k in self.words for n in range(1, len(k)))

    def hold_from(self) -> int | None:
        """Hold back an unfinished sentence that mentions (or is starting to mention) a keyword."""
        if self.sentence_at >= self.fed:
            return None
        if self.guard.hold_sentences or self.keyword_in_sentence or self._keyword_starts_at_end():
            return self.sentence_at
        return None

    def transform(self, text: str) -> str:
        return text

    def release_point(self, pending: str) -> int:
        return len(pending)

    async def finish(self, text: str) -> Verdict:
        found = self._fuzzy(text[-self.keep * 4 :]) or await self.guard.semantic(text, self.rules)
        return self._verdict(found)


@dataclass
class CorrectionsGuard:
    rules: tuple[Correction, ...]
    services: Any = None
    # Streams: hold every unfinished sentence (True), or only those that mention a keyword.
    hold_sentences: bool = False
    name: str = "corrections"
    keywords: list[tuple[str, ...]] = field(default_factory=list)
    norm_bad: list[list[str]] = field(default_factory=list)
    owner_of: list[int] = field(default_factory=list)
    vectors: np.ndarray | None = None
    model: Any = None

    def __post_init__(self) -> None:
        for i, rule in enumerate(self.rules):
            self.keywords.append(tuple(k.casefold() for k in rule.keywords))
            self.norm_bad.append([normalise(b) for b in rule.bad_answers])
            self.owner_of.extend(i for _ in rule.bad_answers)

    def prepare(self) -> None:
        if self.rules:
            self.model = shared_model(self.services)
            if self.model is not None:
                self.vectors = encode(self.model, [b for r in self.rules for b in r.bad_answers])

    async def semantic(self, text: str, rules: list[int]) -> tuple[int, float, str] | None:
        if self.vectors is None or not text.strip():
            return None
        low = text.casefold()
        if not any(k in low for i in rules for k in self.keywords[i]):
            return None
        loop = asyncio.get_running_loop()
        vecs = await loop.run_in_executor(self.services.cpu, encode, self.model, sentences(text))
        sims = vecs @ self.vectors.T  # windows x bad answers
        best = sims.max(axis=0)
        for row in np.argsort(-best):
            i = self.owner_of[int(row)]
            if i in rules and best[row] >= self.rules[i].threshold:
                return i, float(best[row]), "semantic"
        return None

    def open(self, ctx: RequestContext) -> CorrectionScanner | None:
        model = ctx.requested_model or ctx.model
        rules = [
            i
            for i, r in enumerate(self.rules)
            if (not r.scope.keys or ctx.principal.key_id in r.scope.keys)
            and (not r.scope.models or model in r.scope.models)
        ]
        return CorrectionScanner(self, ctx, rules) if rules else None


def build(bc: BuildContext) -> CorrectionsGuard:
    hold = bc.options.get("hold", "keyword")
    if hold not in ("keyword", "sentence"):
        raise RuleLoadError(
            bc.rules_dir / "pipeline.yaml", "hold must be 'keyword' or 'sentence'", field="options.hold"
        )
    rules = load_corrections(bc.rules_dir / str(bc.options.get("dir", "corrections")))
    guard = CorrectionsGuard(rules, bc.services, hold_sentences=hold == "sentence")
    guard.prepare()
    return guard
