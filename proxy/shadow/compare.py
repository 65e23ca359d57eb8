"""Comparing two answers, and scrubbing what gets written to disk.

``similarity`` prefers the shared sentence-embedding model (``services.embedder()``,
cosine of the two answers) and falls back to rapidfuzz's ``ratio`` when the embedder
is not available or not wanted; the result says which method produced the number.
Both run in the CPU executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz

log = logging.getLogger("guardrail.shadow")

Method = Literal["auto", "embedding", "rapidfuzz"]

# Last line of defence before text is written to a record file: when a PII guard ran, the
# forwarded text is already pseudonymised; these catch the obvious rest either way.
_SCRUB = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<EMAIL>"),
    (re.compile(r"\b(?:sk|pk|rk|ghp|xox[abp])[-_][A-Za-z0-9_-]{12,}\b"), "<SECRET>"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"), "<IBAN>"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "<NUMBER>"),
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "<SSN>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<IP>"),
    (re.compile(r"(?<![\w.])\+?\d[\d ().-]{7,}\d\b"), "<PHONE>"),
]


def scrub(text: str) -> str:
    for pattern, label in _SCRUB:
        text = pattern.sub(label, text)
    return text


@dataclass(frozen=True, slots=True)
class Similarity:
    value: float | None  # 0..1; None when one side is empty
    method: str  # "embedding" | "rapidfuzz" | "rapidfuzz (embedder unavailable)"


def _fuzz(a: str, b: str) -> float:
    return fuzz.ratio(a, b) / 100.0


def _embedding(embedder: Any, a: str, b: str) -> float:
    import numpy as np

    vecs = np.asarray(embedder.encode([a, b]), dtype=np.float32)
    na, nb = float(np.linalg.norm(vecs[0])), float(np.linalg.norm(vecs[1]))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return max(0.0, min(1.0, float(vecs[0] @ vecs[1]) / (na * nb)))


def _similarity_sync(services: Any, method: Method, a: str, b: str) -> Similarity:
    if not a.strip() or not b.strip():
        return Similarity(None, "empty")
    if method != "rapidfuzz" and services is not None:
        try:
            embedder = services.embedder()  # loads once, then shared
            return Similarity(round(_embedding(embedder, a, b), 4), "embedding")
        except Exception as exc:  # module missing, model missing, odd API: degrade, say so
            if method == "embedding":
                log.warning("embedder unavailable for similarity", extra={"error": type(exc).__name__})
            return Similarity(round(_fuzz(a, b), 4), "rapidfuzz (embedder unavailable)")
    return Similarity(round(_fuzz(a, b), 4), "rapidfuzz")


async def similarity(services: Any, method: Method, a: str, b: str) -> Similarity:
    loop = asyncio.get_running_loop()
    executor = getattr(services, "cpu", None)
    return await loop.run_in_executor(executor, _similarity_sync, services, method, a, b)
