"""Output PII: personal data in an answer that the request did not contain (from the PII guard).

On only when ``rules/pipeline.yaml`` runs the ``pii`` request guard: its ``pii.yaml``
decides the entities (``output.entities``, ``surfaces.responses``), thresholds and
allow-list, and its per-request state (``ctx.extras["pii"]``) says what the request
contained. For an answer whose request that guard did not see, the signal stays off.

A value counts as new unless the request contained it (compared case-insensitively,
phone-like numbers by their digits, with or without a country prefix), it stands behind a
restored pseudonym (placeholders are masked before the analysis), or pii.yaml allow-lists
it. Each kind of new data is one ``Hit`` (``output.pii.<ENTITY>``) scored by
``output.yaml`` (``pii.score`` / ``pii.entity_scores``, times ``weights.pii``), with
the number of distinct values and the analyzer's confidence in its detail; never the value.

Who acts: ``pii_restore`` keeps acting on the values themselves (redact or block, per
pii.yaml ``output.action``); this signal never changes text. It only adds evidence to the
anomaly score, so with the shipped weights new PII alone flags the answer (score header,
decision record) and refusing or blocking needs more evidence (other signals, or several
kinds of new data at once).

Cost: ``feed`` does nothing (zero per chunk). ``finish`` analyses the whole answer once,
off the event loop, masked exactly as ``pii_restore`` masks it, so the PII engine's
content-hash cache answers when ``pii_restore`` already looked. It has its own timeout;
on a timeout or error it adds no evidence and logs (fail open, like ``pii_restore``): a
second line of defence must not make the fail-closed output guard refuse answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from proxy.context import RequestContext
from proxy.guards.output.config import PiiSignalConfig
from proxy.guards.output.signals import BaseSignal
from proxy.guards.pii.guard import STATE_KEY, PiiRuntime, PiiState, runtime
from proxy.guards.pii.vault import PLACEHOLDER
from proxy.pipeline.config import GuardEntry, PipelineFile
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError, load_file
from proxy.verdicts import Hit

log = logging.getLogger("guardrail.output")
RULE = "output.pii"
WARM_UP = "Warm-up: write to someone@example.org or call +1 202 555 0100."
MIN_DIGITS = 7  # numbers this long match a known one by suffix (a country prefix added or dropped)


def _norm(value: str) -> str:
    v = value.strip().casefold()
    return v if "@" in v else "".join(c for c in v if c.isalnum())


@dataclass(frozen=True, slots=True)
class Known:
    """The values the request contained, as the PII guard saw them (never logged)."""

    raw: frozenset[str]
    norms: frozenset[str]
    numbers: tuple[str, ...]

    @classmethod
    def of(cls, state: PiiState) -> Known:
        raw = frozenset(state.seen) | frozenset(state.vault.values())
        norms = frozenset(_norm(v) for v in raw)
        return cls(raw, norms, tuple(n for n in norms if n.isdigit() and len(n) >= MIN_DIGITS))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value.strip().casefold() in self.raw:
            return True
        n = _norm(value)
        if n in self.norms:
            return True
        if n.isdigit() and len(n) >= MIN_DIGITS:
            return any(n.endswith(k) or k.endswith(n) for k in self.numbers)
        return False

    def __repr__(self) -> str:  # never the values
        return f"Known({len(self.raw)} values)"


def masked(text: str) -> str:
    """Placeholders blanked, offsets kept: the same text ``pii_restore`` analyses."""
    return PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), text)


class PiiSignal(BaseSignal):
    def __init__(self, owner: PiiSignals, state: PiiState, request_id: str) -> None:
        self.owner = owner
        self.state = state
        self.request_id = request_id

    async def finish(self, text: str) -> list[Hit]:
        rt, cfg = self.owner.runtime, self.owner.cfg
        if rt is None or not text.strip():
            return []
        try:
            async with asyncio.timeout(cfg.timeout_ms / 1000):
                (found,) = await rt.analyze([masked(text)], list(self.owner.entities))
        except Exception as exc:  # fail open: see the module docstring
            log.warning(
                "output PII signal: analysis failed, no evidence added",
                extra={"error": type(exc).__name__, "request_id": self.request_id},
            )
            return []
        known = Known.of(self.state)
        new: dict[str, list[tuple[int, int, float, str]]] = {}
        for f in found:
            value = text[f.start : f.end]
            if value not in known:
                new.setdefault(f.entity, []).append((f.start, f.end, f.score, _norm(value)))
        hits: list[Hit] = []
        for entity, spans in new.items():
            score = cfg.entity_scores.get(entity, cfg.score)
            distinct = len({n for *_, n in spans})
            confidence = max(s for _, _, s, _ in spans)
            start, end = spans[0][0], spans[0][1]
            detail = f"new={distinct} confidence={confidence:.2f}"
            hits.append(Hit(f"{RULE}.{entity}", score, "pii", (start, end), "output", detail))
        return hits


def pii_entry(rules_dir: Path) -> GuardEntry | None:
    """The enabled ``pii`` request guard of the pipeline, if any."""
    path = rules_dir / "pipeline.yaml"
    if not path.exists():
        return None
    pipeline = load_file(PipelineFile, path)
    return next((e for e in pipeline.request if e.guard == "pii" and e.enabled), None)


@dataclass
class PiiSignals:
    cfg: PiiSignalConfig
    runtime: PiiRuntime | None
    entities: tuple[str, ...] = ()
    unavailable: str = ""
    name: str = "pii"

    @classmethod
    def create(cls, cfg: PiiSignalConfig, bc: BuildContext, path: Path | str = "output.yaml") -> PiiSignals:
        if not cfg.enabled:
            return cls(cfg, None, unavailable="disabled in output.yaml")
        entry = pii_entry(bc.rules_dir)
        if entry is None:
            return cls(cfg, None, unavailable="the pipeline runs no pii request guard")
        rt = runtime(BuildContext(bc.rules_dir, dict(entry.options), bc.services), response=True)
        for entity in cfg.entity_scores:
            if entity not in rt.cfg.entities:
                raise RuleLoadError(
                    path, f"entity {entity!r} is not in pii.yaml entities", field=f"pii.entity_scores.{entity}"
                )
        entities = tuple(rt.cfg.output_entities()) if rt.cfg.surfaces.responses else ()
        if not entities:
            return cls(cfg, None, unavailable="pii.yaml looks for no personal data in answers")
        # A fresh engine's first analysis costs ~0.1 s more than the next ones: pay it at load
        # (rules load off the event loop), not in the first answer's timeout.
        rt.engine.analyze([WARM_UP], list(entities))
        return cls(cfg, rt, entities)

    def open(self, ctx: RequestContext) -> PiiSignal | None:
        if self.runtime is None:
            return None
        state = ctx.extras.get(STATE_KEY)
        if not isinstance(state, PiiState):  # the pii guard did not see this request
            return None
        return PiiSignal(self, state, ctx.request_id)
