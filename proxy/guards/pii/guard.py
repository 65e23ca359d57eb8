"""Request guard ``pii``: finds personal data in the prompt and rewrites or blocks per ``rules/pii.yaml``.

All prompt texts of a request go through Presidio in one batch, off the event loop (in
``services.cpu``: spaCy holds the GIL, see bench/pii_latency.py and the notes for why
threads and not processes). Texts already analysed (history resent each turn) come
from the engine's content-hash cache. Reversible pseudonyms go into a ``Vault`` kept in
``ctx.extras["pii"]`` for the ``pii_restore`` response guard. Hits carry the entity,
span, score and action, never the value.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

from proxy.context import RequestContext
from proxy.guards.pii.config import PiiFile, load
from proxy.guards.pii.engine import Finding, PiiEngine
from proxy.guards.pii.operators import Operators, replace_spans
from proxy.guards.pii.vault import ConversationVaults, Vault
from proxy.messages import Path, PromptPart, prompt_parts, with_texts
from proxy.pipeline.guard import BuildContext
from proxy.verdicts import Allow, Block, Hit, Rewrite, Verdict

STATE_KEY = "pii"
REQUEST_SURFACES = frozenset({"system", "user", "assistant", "prompt", "embedding_input"})
TOOL_SURFACES = frozenset({"tool", "tool_args"})


@dataclass
class PiiState:
    """What the response side needs: the vault and the values the request contained."""

    vault: Vault
    seen: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # never the values
        return f"PiiState({self.vault!r}, {len(self.seen)} values)"


@dataclass
class PiiRuntime:
    """Everything both PII guards share: policy, engine, operators, executor, conversation vaults."""

    cfg: PiiFile
    engine: PiiEngine
    executor: Executor | None
    ops: Operators
    conversations: ConversationVaults | None

    async def analyze(self, texts: list[str], entities: list[str] | None = None) -> list[list[Finding]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(self.engine.analyze, texts, entities))

    def layer(self, entity: str) -> str:
        return "ner" if self.cfg.ner and entity in {"PERSON", "LOCATION", "NRP", "ORGANIZATION"} else "pattern"


def conversation_key(ctx: RequestContext, parts: list[PromptPart]) -> str:
    """Caller + the conversation's first user turn: stable across the turns of one chat."""
    first = next((p.text for p in parts if p.surface in ("user", "prompt")), "")
    return hashlib.sha256(f"{ctx.principal.key_id}\x00{ctx.route}\x00{first}".encode()).hexdigest()


@dataclass
class PiiGuard:
    rt: PiiRuntime
    name: str = "pii"

    def surfaces(self) -> frozenset[str]:
        s = self.rt.cfg.surfaces
        return (REQUEST_SURFACES if s.request_messages else frozenset()) | (
            TOOL_SURFACES if s.tool_results else frozenset()
        )

    def state(self, ctx: RequestContext, parts: list[PromptPart]) -> PiiState:
        st = ctx.extras.get(STATE_KEY)
        if isinstance(st, PiiState):
            return st
        if self.rt.conversations is not None:
            vault = self.rt.conversations.get(conversation_key(ctx, parts))
        else:
            vault = Vault()
        st = PiiState(vault)
        ctx.extras[STATE_KEY] = st
        return st

    async def check(self, ctx: RequestContext) -> Verdict:
        wanted = self.surfaces()
        parts = [p for p in prompt_parts(ctx.route, ctx.body) if p.surface in wanted and p.text.strip()]
        if not parts:
            return Allow(self.name)
        findings = await self.rt.analyze([p.text for p in parts])
        st = self.state(ctx, parts)
        hits: list[Hit] = []
        blocked: list[Hit] = []
        changes: dict[Path, str] = {}
        policy = self.rt.cfg.entities
        for part, found in zip(parts, findings, strict=True):
            spans: list[tuple[int, int, str]] = []
            for f in found:
                action = policy[f.entity].action
                value = part.text[f.start : f.end]
                st.seen.add(value.strip().casefold())
                if self.rt.cfg.surfaces.audit:
                    hit = Hit(
                        f"pii.{f.entity}", f.score, self.rt.layer(f.entity), (f.start, f.end), part.surface, action
                    )
                else:  # decisions name the entity only
                    hit = Hit(f"pii.{f.entity}", f.score)
                hits.append(hit)
                if action == "block":
                    blocked.append(hit)
                else:
                    spans.append((f.start, f.end, self.rt.ops.apply(action, f.entity, value, st.vault)))
            if spans:
                changes[part.path] = replace_spans(part.text, spans)
        if blocked:
            return Block(self.name, self.rt.cfg.block_message, tuple(blocked))
        if changes:
            return Rewrite(self.name, with_texts(ctx.body, changes), tuple(hits), f"{len(hits)} PII value(s) replaced")
        return Allow(self.name)


@functools.lru_cache(maxsize=4)
def shared_engine(cfg_json: str, ner: bool) -> PiiEngine:
    """Engines by configuration content: a reload (or another app in the same process, as in
    the tests) with an unchanged pii.yaml reuses the loaded model and the findings cache."""
    return PiiEngine(PiiFile.model_validate_json(cfg_json), ner=ner)


def runtime(bc: BuildContext, *, response: bool = False) -> PiiRuntime:
    """Loads pii.yaml and builds the engine (spaCy ~1 s; importing Presidio the first time ~7 s).

    The response side builds its own engine: pattern-only unless ``output.ner`` is set, so
    it costs a blank tokenizer, not a second NER model.
    """
    cfg = load(bc.rules_dir / str(bc.options.get("file", "pii.yaml")))
    executor = bc.services.cpu if bc.services is not None else None
    convs = None
    if cfg.mapping_scope == "conversation" and not response:
        convs = ConversationVaults(cfg.conversation_ttl_s)
    engine = shared_engine(cfg.model_dump_json(), cfg.ner and cfg.output.ner if response else cfg.ner)
    return PiiRuntime(cfg, engine, executor, Operators(cfg.mask, cfg.hash_salt), convs)


def build(bc: BuildContext) -> PiiGuard:
    return PiiGuard(runtime(bc))
