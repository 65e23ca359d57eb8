"""Pre-approved answers (``rules/approved/*.yaml``): questions that always get the same answer.

The last user message is compared with each answer's example questions (intents):
first an exact/fuzzy match of the normalised text (rapidfuzz, microseconds), then a
semantic match with the shared embedding model (intent vectors computed once per
ruleset, query vectors cached by text). On a match the request is answered now with a
``Substitute`` (the core builds a complete OpenAI response or SSE stream from it) and
the upstream is never called; headers name the answer's id and version.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from rapidfuzz import fuzz, process

from proxy.context import RequestContext
from proxy.guards.output.vectors import encode, shared_model
from proxy.messages import last_user_text
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError, Strict, load_file, rule_files
from proxy.verdicts import Allow, Hit, Substitute, Verdict

log = logging.getLogger("guardrail.approved")
ID_HEADER = "x-guardrail-approved-id"
VERSION_HEADER = "x-guardrail-approved-version"


class Scope(Strict):
    keys: list[str] = Field(default_factory=list)  # proxy key ids; empty = any
    models: list[str] = Field(default_factory=list)  # requested models; empty = any


class Examples(Strict):
    match: list[str] = Field(default_factory=list)
    no_match: list[str] = Field(default_factory=list)


class ApprovedAnswer(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: int = Field(ge=1)
    status: Literal["experimental", "test", "stable"] = "experimental"
    owner: str = ""
    intents: list[str] = Field(min_length=1)
    answer: str = Field(min_length=1)
    threshold: float = Field(default=0.86, gt=0, le=1)  # cosine similarity
    fuzzy_threshold: float = Field(default=92, gt=0, le=100)  # rapidfuzz ratio on normalised text
    scope: Scope = Field(default_factory=Scope)
    examples: Examples = Field(default_factory=Examples)  # run by tests/guards/test_approved.py


class ApprovedFile(Strict):
    schema_version: Literal[1]
    answers: list[ApprovedAnswer] = Field(default_factory=list)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def load_answers(directory: Path) -> tuple[ApprovedAnswer, ...]:
    seen: dict[str, Path] = {}
    out: list[ApprovedAnswer] = []
    for path in rule_files(directory):
        for ans in load_file(ApprovedFile, path).answers:
            if ans.id in seen:
                raise RuleLoadError(path, f"duplicate id (also in {seen[ans.id].name})", rule_id=ans.id, field="id")
            seen[ans.id] = path
            out.append(ans)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Match:
    answer: ApprovedAnswer
    score: float
    layer: str


@dataclass
class ApprovedGuard:
    answers: tuple[ApprovedAnswer, ...]
    services: Any = None
    max_chars: int = 1000  # longer messages are not questions we pre-approve
    name: str = "approved"
    owner_of: list[int] = field(default_factory=list)  # intent row -> answer index
    norm_intents: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    model: Any = None
    _cache: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        for i, ans in enumerate(self.answers):
            for intent in ans.intents:
                self.owner_of.append(i)
                self.norm_intents.append(normalise(intent))

    def prepare(self) -> None:
        """Embed every intent once (blocking: runs where the ruleset is built, off the loop)."""
        if not self.answers:
            return
        self.model = shared_model(self.services)
        if self.model is None:
            log.warning("approved answers: no embedder, fuzzy matching only")
            return
        self.vectors = encode(self.model, [i for a in self.answers for i in a.intents])

    def _allowed(self, ans: ApprovedAnswer, ctx: RequestContext) -> bool:
        s = ans.scope
        model = ctx.requested_model or ctx.model
        return (not s.keys or ctx.principal.key_id in s.keys) and (not s.models or model in s.models)

    def fuzzy(self, text: str, allowed: set[int]) -> Match | None:
        norm = normalise(text)
        rows = [r for r, a in enumerate(self.owner_of) if a in allowed]
        choices = {r: self.norm_intents[r] for r in rows}
        found = process.extractOne(norm, choices, scorer=fuzz.ratio)
        if found is None:
            return None
        _, score, row = found
        ans = self.answers[self.owner_of[row]]
        return Match(ans, score / 100, "fuzzy") if score >= ans.fuzzy_threshold else None

    async def semantic(self, text: str, allowed: set[int]) -> Match | None:
        if self.vectors is None or self.model is None:
            return None
        vec = self._cache.get(text)
        if vec is None:
            loop = asyncio.get_running_loop()
            vec = (await loop.run_in_executor(self.services.cpu, encode, self.model, [text]))[0]
            self._cache[text] = vec  # written on the loop thread only
            if len(self._cache) > 4096:
                self._cache.popitem(last=False)
        sims = self.vectors @ vec
        best: Match | None = None
        for row in np.argsort(-sims)[:8]:
            ans = self.answers[self.owner_of[int(row)]]
            if self.owner_of[int(row)] in allowed and sims[row] >= ans.threshold:
                if best is None or sims[row] > best.score:
                    best = Match(ans, float(sims[row]), "semantic")
        return best

    async def find(self, text: str, ctx: RequestContext | None = None) -> Match | None:
        allowed = {i for i, a in enumerate(self.answers) if ctx is None or self._allowed(a, ctx)}
        if not allowed or not text.strip() or len(text) > self.max_chars:
            return None
        return self.fuzzy(text, allowed) or await self.semantic(text, allowed)

    async def check(self, ctx: RequestContext) -> Verdict:
        text = last_user_text(ctx.route, ctx.body)
        found = await self.find(text, ctx) if text else None
        if found is None:
            return Allow(self.name)
        ans = found.answer
        hit = Hit(ans.id, round(found.score, 3), found.layer, None, "user", f"version={ans.version}")
        headers = {ID_HEADER: ans.id, VERSION_HEADER: str(ans.version)}
        return Substitute(self.name, ans.answer, (hit,), finish_reason="stop", headers=headers)


def build(bc: BuildContext) -> ApprovedGuard:
    directory = bc.rules_dir / str(bc.options.get("dir", "approved"))
    guard = ApprovedGuard(load_answers(directory), bc.services, int(bc.options.get("max_chars", 1000)))
    guard.prepare()
    return guard
