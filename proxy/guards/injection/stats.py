"""Process-wide counts of the injection detector's work, read by the ``/metrics`` scrape.

``record`` is called from the CPU pool after each batch of fresh texts: by the injection
guard for prompts (``side="request"``; its cache hits are not scanned, so not counted)
and by the output guard's injection-echo signal for answers (``side="response"``).
Exported by ``proxy.ops.scrape`` as ``guardrail_injection_texts_total{side, layer}``
(``layer="all"``: texts scanned; ``"semantic"``: those the semantic layer read) and
``guardrail_injection_semantic_windows_total{side}`` (windows it read, embedded or from
its window cache). Their ratio is how often the semantic gate opens on live traffic,
which is what the detector's latency mostly depends on. The counts belong to the
process: two apps in one process (tests) export the same totals.
"""

from __future__ import annotations

import threading
from collections import Counter

SIDES = ("request", "response")
KINDS = ("texts", "semantic_texts", "semantic_windows")
_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def record(side: str, windows: list[int]) -> None:
    """One batch of fresh scans: ``windows`` holds each text's ``Findings.windows``."""
    with _lock:
        _counts[(side, "texts")] += len(windows)
        _counts[(side, "semantic_texts")] += sum(n > 0 for n in windows)
        _counts[(side, "semantic_windows")] += sum(windows)


def snapshot() -> dict[tuple[str, str], int]:
    with _lock:
        return {(side, kind): _counts[(side, kind)] for side in SIDES for kind in KINDS}
