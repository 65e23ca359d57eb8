"""``rules/probes.yaml``: probe prompts with expected answers, and how often to send them.

Each expectation is exactly one of ``exact`` (after trimming; case-insensitive unless
``case_sensitive``), ``pattern`` (a regex searched in the answer) or ``similar_to``
(similarity at least ``threshold``, see proxy.shadow.compare).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from proxy.rules.loader import Strict, load_file
from proxy.shadow.compare import similarity


class Expect(Strict):
    exact: str | None = None
    pattern: str | None = None
    similar_to: str | None = None
    threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    similarity: Literal["auto", "embedding", "rapidfuzz"] = "rapidfuzz"
    case_sensitive: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Expect:
        given = [k for k in ("exact", "pattern", "similar_to") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'exact', 'pattern' or 'similar_to'")
        return self

    async def check(self, answer: str, services: Any = None) -> tuple[bool, str]:
        """(passed, why) for one answer."""
        flags = 0 if self.case_sensitive else re.IGNORECASE
        if self.exact is not None:
            a, b = answer.strip(), self.exact.strip()
            ok = a == b if self.case_sensitive else a.casefold() == b.casefold()
            return ok, "exact match" if ok else "answer differs from the expected text"
        if self.pattern is not None:
            ok = re.search(self.pattern, answer, flags) is not None
            return ok, "pattern found" if ok else "pattern not found"
        assert self.similar_to is not None
        sim = await similarity(services, self.similarity, answer, self.similar_to)
        ok = sim.value is not None and sim.value >= self.threshold
        return ok, f"similarity {sim.value} ({sim.method}) vs threshold {self.threshold}"


class Probe(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    prompt: str = Field(min_length=1)
    system: str | None = None
    expect: Expect
    # Requested models (aliases, pinned through policy.yaml) or pinned names; empty = every
    # pinned model except embedding models.
    models: list[str] = Field(default_factory=list)
    max_tokens: int = Field(default=32, gt=0, le=4096)

    def body(self, model: str) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": self.prompt})
        return {"model": model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0}


class ProbesFile(Strict):
    schema_version: Literal[1]
    enabled: bool = False
    interval_s: float = Field(default=3600.0, ge=0.01)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # A failing probe is reported in /readyz; with fail_ready it also makes the proxy not ready.
    fail_ready: bool = False
    probes: list[Probe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ProbesFile:
        ids = [p.id for p in self.probes]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate probe id")
        return self


DISABLED = ProbesFile(schema_version=1)


def load_probes(rules_dir: Path, name: str = "probes.yaml") -> ProbesFile:
    path = rules_dir / name
    if not path.exists():
        return DISABLED
    return load_file(ProbesFile, path)
