"""``rules/shadow.yaml``: which requests are also sent to a candidate model, and the shadow budget.

Compiled once per ruleset (the shadow response guard loads it); the worker takes the
snapshot each sampled request carries, so a reload applies to the next request.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from proxy.rules.loader import Strict, load_file

TextRoute = Literal["chat.completions", "completions", "responses"]
TEXT_ROUTES: tuple[TextRoute, ...] = ("chat.completions", "completions", "responses")


class Candidate(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    model: str = Field(min_length=1)
    # Another provider behind the same OpenAI API; default: the proxy's own upstream.
    upstream_url: str | None = Field(default=None, pattern=r"^https?://")
    # Name of the environment variable holding that upstream's key (never the key itself).
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Response guards (names in pipeline.yaml) also run over the candidate's answer.
    anomaly_guards: list[str] = Field(default_factory=list)


class ShadowRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    candidate: str
    sample: float = Field(ge=0.0, le=1.0)
    routes: list[TextRoute] = Field(default_factory=lambda: list(TEXT_ROUTES))
    keys: list[str] = Field(default_factory=list)  # proxy key ids; empty = any
    models: list[str] = Field(default_factory=list)  # requested models (aliases); empty = any

    def matches(self, route: str, key_id: str, model: str) -> bool:
        return (
            route in self.routes
            and (not self.keys or key_id in self.keys)
            and (not self.models or model in self.models)
        )


class ShadowBudget(Strict):
    """A separate daily cap for shadow calls (UTC day); callers' budgets are never touched."""

    tokens_per_day: int = Field(default=200_000, ge=0)
    usd_per_day: float | None = Field(default=None, ge=0)


class ShadowFile(Strict):
    schema_version: Literal[1]
    enabled: bool = False
    record_path: str = "shadow.jsonl"  # JSONL file the worker appends to (relative: to the working dir)
    similarity: Literal["auto", "embedding", "rapidfuzz"] = "auto"
    # Read once at startup: the bounded queue (full → dropped and counted) and its workers.
    queue_size: int = Field(default=100, ge=1, le=100_000)
    concurrency: int = Field(default=2, ge=1, le=64)
    seed: str = ""  # mixed into the per-request sampling hash
    budget: ShadowBudget = Field(default_factory=ShadowBudget)
    candidates: list[Candidate] = Field(default_factory=list)
    rules: list[ShadowRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> ShadowFile:
        ids = [c.id for c in self.candidates]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate candidate id")
        for rule in self.rules:
            if rule.candidate not in ids:
                raise ValueError(f"rule {rule.id!r} names unknown candidate {rule.candidate!r}")
        return self

    def candidate(self, cid: str) -> Candidate:
        return next(c for c in self.candidates if c.id == cid)

    def pick(self, route: str, key_id: str, model: str, request_id: str) -> tuple[ShadowRule, Candidate] | None:
        """The first matching rule, if this request falls in its sampled share."""
        if not self.enabled:
            return None
        for rule in self.rules:
            if rule.matches(route, key_id, model):
                if sampled(self.seed + rule.id, request_id, rule.sample):
                    return rule, self.candidate(rule.candidate)
                return None
        return None


def sampled(seed: str, request_id: str, share: float) -> bool:
    """Deterministic per request: the same id and seed always give the same answer."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    digest = hashlib.sha256(f"{seed}\0{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


DISABLED = ShadowFile(schema_version=1)


def load_shadow(rules_dir: Path, name: str = "shadow.yaml") -> ShadowFile:
    """The shadow config; a rules pack without the file means shadow is off."""
    path = rules_dir / name
    if not path.exists():
        return DISABLED
    return load_file(ShadowFile, path)
