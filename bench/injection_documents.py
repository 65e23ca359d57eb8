"""The injection detector on long documents scanned as tool results (what RAG apps and
agents pass on): false positives on benign documents, and recall on attacks planted in them.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/injection_documents.py \\
        ../shared/datasets/injection/train.jsonl [--window-penalty 0.2] [--n 150] [--size 8000] [--no-segments]

Benign documents: ``--size`` characters of docstrings joined by blank lines, from the
standard library and from the venv's third-party packages (``injection_latency``'s
builders). Planted: a random short train attack (< 600 characters) inserted at a line
break of a standard-library document. Train rows only: the test split stays for the eval.
``--no-segments`` reads each document in whole-text windows only, as before
``proxy/guards/injection/segments.py``. Prints one line per figure (the time is per
document scanned, planted and benign) and a JSON line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("train", type=Path, help="injection/train.jsonl (attacks to plant)")
    ap.add_argument("--window-penalty", type=float, default=0.0)
    ap.add_argument("--no-segments", action="store_true", help="whole-text windows only (as before segments.py)")
    ap.add_argument("--n", type=int, default=150, help="documents per case")
    ap.add_argument("--size", type=int, default=8000, help="characters per document")
    args = ap.parse_args()
    if "test" in args.train.name or "dev" in args.train.name:
        ap.error("plant train attacks only")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import injection_latency as lat

    from proxy.embedding import load_default
    from proxy.guards.injection.detector import Detector
    from proxy.guards.injection.rules import load_rules

    rows = [json.loads(line) for line in args.train.read_text(encoding="utf-8").split("\n") if line.strip()]
    attacks = [r["text"] for r in rows if int(r["label"]) == 1 and len(r["text"]) < 600]
    stdlib, packages = lat.stdlib_docs(), lat.docstrings(lat.PACKAGES, per_module=None)
    det = Detector.from_loaded(
        load_rules(REPO / "rules" / "injection"),
        load_default(),
        window_penalty=args.window_penalty,
        **({"segment_surfaces": frozenset()} if args.no_segments else {}),
    )
    rnd = random.Random(1)

    def document(pool: list[str]) -> str:
        parts: list[str] = []
        while sum(map(len, parts)) < args.size:
            parts.append(rnd.choice(pool))
        return "\n\n".join(parts)[: args.size]

    ms: list[float] = []

    def scan(doc: str) -> bool:
        t0 = time.perf_counter()
        found = bool(det.scan(doc, "tool"))
        ms.append((time.perf_counter() - t0) * 1000)
        return found

    det.scan("\n\n".join(stdlib[:20]), "tool")  # warm-up (the model's first call), rnd untouched
    caught = alone = 0
    for attack in rnd.sample(attacks, args.n):
        base = document(stdlib)
        at = base.rfind("\n", 0, rnd.randrange(len(base))) + 1
        caught += scan(base[:at] + attack + "\n" + base[at:])
        alone += bool(det.scan(attack, "tool"))  # the same attack on its own: what dilution costs
    fp_std = sum(scan(document(stdlib)) for _ in range(args.n))
    fp_pkg = sum(scan(document(packages)) for _ in range(args.n))
    ms.sort()
    figures = {
        "segments": not args.no_segments, "window_penalty": args.window_penalty, "size": args.size, "n": args.n,
        "planted_recall": caught / args.n, "alone_recall": alone / args.n, "fpr_stdlib": fp_std / args.n, "fpr_packages": fp_pkg / args.n,
        "p50_ms": round(ms[len(ms) // 2], 1), "p95_ms": round(ms[int(len(ms) * 0.95)], 1),
    }  # fmt: skip
    seg = "off" if args.no_segments else "on"
    print(f"segments {seg}, window_penalty {args.window_penalty}, {args.n} documents of {args.size} characters, as tool results:")
    print(f"  recall on planted train attacks   {figures['planted_recall']:.3f}")
    print(f"  the same attacks on their own     {figures['alone_recall']:.3f}")
    print(f"  FPR, standard-library docstrings  {figures['fpr_stdlib']:.3f}")
    print(f"  FPR, third-party docstrings       {figures['fpr_packages']:.3f}")
    print(f"  ms per document, p50 / p95        {figures['p50_ms']} / {figures['p95_ms']}")
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
