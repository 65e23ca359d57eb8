"""Process-wide counts of the injection detector's work, read by the ``/metrics`` scrape.

``record`` is called by the guard from the CPU pool after each batch of fresh texts
(cache hits cost nothing and are not counted). Exported by ``proxy.ops.metrics`` as
``guardrail_injection_texts_total{layer="all"|"semantic"}`` and
``guardrail_injection_semantic_windows_total``: their ratio is how often the semantic
gate opens on live traffic, which is what the detector's latency mostly depends on.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_counts = {"texts": 0, "semantic_texts": 0, "semantic_windows": 0}


def record(texts: int, semantic_texts: int, semantic_windows: int) -> None:
    with _lock:
        _counts["texts"] += texts
        _counts["semantic_texts"] += semantic_texts
        _counts["semantic_windows"] += semantic_windows


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)
