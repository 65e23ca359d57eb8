"""The ``injection`` request guard: every prompt surface against the signature database.

Scans user turns, tool/function results (where indirect injections in documents, web
pages and e-mails arrive), tool-call arguments and legacy ``prompt`` strings; the
app's own system prompt is trusted unless ``trust_system_prompt: false``. Results are
cached per (surface, text) hash, so the history a client resends every turn is not
scanned again. Detection runs in ``services.cpu``, never on the event loop.

Options (``rules/pipeline.yaml``): ``dir`` (default ``injection``), ``surfaces``,
``trust_system_prompt`` (default true), ``semantic`` (``gated`` | ``always`` | ``off``),
``semantic_windows`` (windows embedded per text, default 4: in ``gated`` mode those the
learned heads gave at least ``semantic_gate``, most suspicious first; in ``always`` mode
the head and the 3 with the most cue words; the regex and fuzzy layers always read the
whole text), ``semantic_gate`` (gated mode: the learned heads' best probability below
which a text, or a window of it, skips the semantic layer, default 0.5),
``window_penalty`` (texts longer than one 1,000-character window: the learned heads'
logits lowered by this x ln(windows), default 0; 0.2 cut false positives on long
benign documents, at a cost in recall on attacks planted in them: see
docs/injection-detector.md), ``segment_surfaces`` (default ``[tool]``: where a long
text is also read segment by segment, so a short instruction planted in a document is not
diluted, see ``segments.py``), ``segment_threshold`` (the fusion's probability a segment
must reach, default 0.9), ``cache_size``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from proxy.context import RequestContext
from proxy.guards.injection import stats
from proxy.guards.injection.detector import Detector
from proxy.guards.injection.fuse import Finding, verdict
from proxy.guards.injection.rules import load_rules
from proxy.guards.injection.segments import SCANNED_SURFACES, SEGMENT_SURFACES, SEGMENT_THRESHOLD
from proxy.messages import PromptPart, prompt_parts
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from proxy.verdicts import Verdict

log = logging.getLogger("guardrail.injection")
DEFAULT_SURFACES = SCANNED_SURFACES


def _key(part: PromptPart) -> bytes:
    return hashlib.blake2b(f"{part.surface}\0{part.text}".encode(), digest_size=16).digest()


@dataclass
class InjectionGuard:
    detector: Detector
    services: Any = None
    surfaces: frozenset[str] = frozenset(DEFAULT_SURFACES)
    trust_system_prompt: bool = True
    cache_size: int = 4096
    name: str = "injection"
    _cache: OrderedDict[bytes, tuple[Finding, ...]] = field(default_factory=OrderedDict)

    def wanted(self, part: PromptPart) -> bool:
        if part.surface == "system":
            return not self.trust_system_prompt
        return part.surface in self.surfaces and bool(part.text.strip())

    def _scan_many(self, parts: list[PromptPart]) -> list[tuple[Finding, ...]]:
        # an untrusted system prompt is scanned like a user turn
        found = [self.detector.scan(p.text, "user" if p.surface == "system" else p.surface) for p in parts]
        stats.record("request", [f.windows for f in found])
        return [tuple(f) for f in found]

    async def check(self, ctx: RequestContext) -> Verdict:
        parts = [p for p in prompt_parts(ctx.route, ctx.body) if self.wanted(p)]
        results: dict[bytes, tuple[Finding, ...]] = {}
        todo: dict[bytes, PromptPart] = {}
        for p in parts:
            k = _key(p)
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                results[k] = hit
            else:
                todo.setdefault(k, p)
        if todo:
            loop = asyncio.get_running_loop()
            executor = self.services.cpu if self.services is not None else None
            fresh = await loop.run_in_executor(executor, self._scan_many, list(todo.values()))
            for k, found in zip(todo, fresh, strict=True):
                results[k] = found
                self._cache[k] = found  # only the loop thread touches the cache
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        fired = [(f, p.surface) for p in parts for f in results[_key(p)]]
        return verdict(self.name, fired)


def build(bc: BuildContext) -> InjectionGuard:
    opts = bc.options
    loaded = load_rules(bc.rules_dir / str(opts.get("dir", "injection")))
    mode = str(opts.get("semantic", "gated"))
    if mode not in ("gated", "always", "off"):
        raise RuleLoadError(bc.rules_dir / "pipeline.yaml", f"unknown semantic mode {mode!r}", field="options.semantic")
    embedder = None
    if mode != "off" and bc.services is not None:
        embedder = bc.services.embedder()
    elif mode != "off":
        log.warning("injection guard built without services: semantic layer off")
    budget = opts.get("semantic_windows", 4)
    try:
        penalty = float(opts.get("window_penalty", 0.0))
    except (TypeError, ValueError):
        penalty = -1.0
    if not penalty >= 0:
        raise RuleLoadError(
            bc.rules_dir / "pipeline.yaml", "window_penalty must be a number >= 0", field="options.window_penalty"
        )
    seg_surfaces = opts.get("segment_surfaces", list(SEGMENT_SURFACES))
    seg_threshold = opts.get("segment_threshold", SEGMENT_THRESHOLD)
    if not isinstance(seg_surfaces, list) or not all(x in DEFAULT_SURFACES for x in seg_surfaces):
        msg = f"segment_surfaces must be a list of the surfaces this guard scans ({', '.join(DEFAULT_SURFACES)})"
        raise RuleLoadError(bc.rules_dir / "pipeline.yaml", msg, field="options.segment_surfaces")
    if isinstance(seg_threshold, bool) or not isinstance(seg_threshold, int | float) or not 0 < seg_threshold < 1:
        raise RuleLoadError(
            bc.rules_dir / "pipeline.yaml",
            "segment_threshold must be a number between 0 and 1",
            field="options.segment_threshold",
        )
    detector = Detector.from_loaded(
        loaded,
        embedder,
        semantic_mode=mode,
        window_budget=None if budget is None else int(budget),
        gate=float(opts.get("semantic_gate", 0.5)),
        window_penalty=penalty,
        segment_surfaces=frozenset(seg_surfaces),
        segment_threshold=float(seg_threshold),
    )
    return InjectionGuard(
        detector,
        bc.services,
        frozenset(opts.get("surfaces", DEFAULT_SURFACES)),
        bool(opts.get("trust_system_prompt", True)),
        int(opts.get("cache_size", 4096)),
    )
