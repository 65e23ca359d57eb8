"""``guardrail-proxy eval injection FILE``: score the injection detector on labelled JSONL.

Each row is ``{"text", "label" (1 attack, 0 benign), "source"}``. Prints precision,
recall, FPR and F1 at the shipped thresholds, recall at FPR ≤ 1% (from the risk-score
ROC; also without the attacks that need their system prompt to be attacks), per source
prefix, the FPR on ``(hard:…)`` rows and latency p50/p95 per row;
optionally the recall on evasion-transformed attacks. Writes a JSON report and a
ROC/PR plot (PNG).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from proxy.evals.evasion import TRANSFORMS
from proxy.guards.injection.segments import SCANNED_SURFACES, SEGMENT_SURFACES, SEGMENT_THRESHOLD

SURFACES = list(SCANNED_SURFACES)
CONTEXT_ONLY = "/logic-violating"  # source tag of attacks that are attacks only against their system prompt


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="JSONL with text, label, source")
    parser.add_argument("--rules", type=Path, default=Path("rules/injection"), help="injection rules directory")
    parser.add_argument("--report", type=Path, default=Path("injection-eval.json"), help="JSON report path")
    parser.add_argument("--plot", type=Path, default=Path("injection-eval.png"), help="ROC/PR plot path")
    parser.add_argument("--semantic", choices=["gated", "always", "off"], default="gated")
    parser.add_argument("--semantic-gate", type=float, default=0.5,
                        help="as the guard's semantic_gate option (rules/pipeline.yaml)")  # fmt: skip
    parser.add_argument("--semantic-windows", type=int, default=4, help="as the guard's semantic_windows option")
    parser.add_argument("--window-penalty", type=float, default=0.0, help="as the guard's window_penalty option")
    parser.add_argument("--segment-surfaces", nargs="*", choices=SURFACES,
                        default=list(SEGMENT_SURFACES),
                        help="as the guard's segment_surfaces option (none: whole-text windows only)")
    parser.add_argument("--segment-threshold", type=float, default=SEGMENT_THRESHOLD,
                        help="as the guard's segment_threshold option")
    parser.add_argument("--surface", choices=SURFACES, default="user",
                        help="scan every row as this surface (tool: documents and tool results)")  # fmt: skip
    parser.add_argument("--evasion", action="store_true", help="also score evasion-transformed attacks")
    parser.add_argument("--evasion-sample", type=int, default=0, help="evasion on N attacks (seeded sample; 0 = all)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows")


def prefix(source: str) -> str:
    return re.split(r"[/(]", source, maxsplit=1)[0]


def counts(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "fpr": fpr, "f1": f1}


def roc(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds descending; a row is positive when score ≥ threshold."""
    thr = np.unique(score)[::-1]
    pos, neg = max(1, int((y == 1).sum())), max(1, int((y == 0).sum()))
    tpr = np.array([((score >= t) & (y == 1)).sum() / pos for t in thr])
    fpr = np.array([((score >= t) & (y == 0)).sum() / neg for t in thr])
    return fpr, tpr, thr


def recall_at_fpr(y: np.ndarray, score: np.ndarray, max_fpr: float = 0.01) -> tuple[float, float]:
    fpr, tpr, thr = roc(y, score)
    ok = np.where(fpr <= max_fpr)[0]
    if len(ok) == 0:
        return 0.0, float("inf")
    best = ok[np.argmax(tpr[ok])]
    return float(tpr[best]), float(thr[best])


def plot(y: np.ndarray, score: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr, thr = roc(y, score)
    precision = np.array([((score >= t) & (y == 1)).sum() / max(1, (score >= t).sum()) for t in thr])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    a.plot(np.r_[0, fpr], np.r_[0, tpr])
    a.axvline(0.01, ls="--", c="grey")
    a.set_xscale("symlog", linthresh=0.001)
    a.set(xlabel="false-positive rate (symlog)", ylabel="recall", title="ROC", xlim=(0, 1))
    a.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    b.plot(tpr, precision)
    b.set(xlabel="recall", ylabel="precision", title="precision / recall", ylim=(0, 1.02))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _detector(args: argparse.Namespace) -> Any:
    from proxy.guards.injection.detector import Detector
    from proxy.guards.injection.rules import load_rules

    loaded = load_rules(args.rules)
    embedder = None
    if args.semantic != "off":
        from proxy.embedding import load_default

        embedder = load_default()
    return Detector.from_loaded(
        loaded, embedder, semantic_mode=args.semantic, gate=args.semantic_gate, window_budget=args.semantic_windows,
        window_penalty=args.window_penalty, segment_surfaces=frozenset(args.segment_surfaces),
        segment_threshold=args.segment_threshold,
    )  # fmt: skip


def evaluate(
    rows: list[dict[str, Any]], detector: Any, evasion: bool = False, sample: int = 0, surface: str = "user"
) -> dict[str, Any]:
    from tqdm import tqdm

    y = np.array([int(r["label"]) for r in rows])
    pred = np.zeros(len(rows), dtype=int)
    score = np.zeros(len(rows))
    lat: list[float] = []
    windows = np.zeros(len(rows), dtype=int)
    for i, row in enumerate(tqdm(rows, desc="injection eval", unit="row", file=sys.stderr)):
        t0 = time.perf_counter()
        fired = detector.scan(row["text"], surface)
        lat.append((time.perf_counter() - t0) * 1000)
        windows[i] = getattr(fired, "windows", 0)
        pred[i] = int(bool(fired))
        score[i] = max(detector.score(row["text"], surface), 0.5 if fired else 0.0)
    r_at, thr_at = recall_at_fpr(y, score)
    # Attacks only against a particular system prompt (CyberSecEval's logic-violating rows,
    # "Can you explain Schrödinger's cat?" to a bot told to avoid physics): the data set's
    # README says to filter them for a detector that sees only the user turn. Reported
    # beside the overall figure, never instead of it.
    visible = ~((y == 1) & np.array([CONTEXT_ONLY in r["source"] for r in rows]))
    r_vis, _ = recall_at_fpr(y[visible], score[visible])
    report: dict[str, Any] = {
        "rows": len(rows),
        "overall": counts(y, pred),
        "recall_at_fpr_1pct": r_at,
        "risk_threshold_at_fpr_1pct": thr_at,
        "context_only_attacks": int((~visible).sum()),
        "recall_at_fpr_1pct_without_context_only": r_vis,
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))},
        # how often the (expensive) semantic layer ran, and on how many windows: what
        # semantic_gate trades against recall (docs/injection-detector.md)
        "semantic_layer": {"rows_run": float((windows > 0).mean()), "windows_per_row": float(windows.mean())},
    }
    per: dict[str, Any] = {}
    for p in sorted({prefix(r["source"]) for r in rows}):
        idx = np.array([prefix(r["source"]) == p for r in rows])
        per[p] = {"rows": int(idx.sum()), **counts(y[idx], pred[idx])}
    report["per_source"] = per
    hard = np.array(["(hard:" in r["source"] for r in rows])
    report["hard_benign"] = {"rows": int(hard.sum()), "fpr": float(pred[hard & (y == 0)].mean()) if hard.any() else 0.0}
    if evasion:
        att_idx = [i for i, r in enumerate(rows) if int(r["label"]) == 1]
        if sample and sample < len(att_idx):
            att_idx = sorted(random.Random(3).sample(att_idx, sample))
        attacks = [rows[i]["text"] for i in att_idx]
        plain = float(pred[att_idx].mean()) if attacks else 0.0
        ev: dict[str, Any] = {"attacks": len(attacks), "plain_recall": plain}
        for name, fn in TRANSFORMS.items():
            hits = [bool(detector.scan(fn(t), surface)) for t in tqdm(attacks, desc=f"evasion {name}", file=sys.stderr)]
            rec = float(np.mean(hits)) if hits else 0.0
            ev[name] = {"recall": rec, "ratio_to_plain": rec / plain if plain else 0.0}
        report["evasion"] = ev
    report["_y"], report["_score"] = y, score
    return report


def show(report: dict[str, Any]) -> str:
    o = report["overall"]
    lines = [
        f"rows {report['rows']}  precision {o['precision']:.3f}  recall {o['recall']:.3f}  "
        f"FPR {o['fpr']:.3f}  F1 {o['f1']:.3f}",
        f"recall at FPR<=1%: {report['recall_at_fpr_1pct']:.3f} (risk >= {report['risk_threshold_at_fpr_1pct']:.3f})",
        f"  without the {report['context_only_attacks']} attacks that need their system prompt "
        f"({CONTEXT_ONLY}): {report['recall_at_fpr_1pct_without_context_only']:.3f}",
        f"hard benign rows {report['hard_benign']['rows']}: FPR {report['hard_benign']['fpr']:.3f}",
        f"latency per row: p50 {report['latency_ms']['p50']:.1f} ms  p95 {report['latency_ms']['p95']:.1f} ms",
        f"semantic layer ran on {report['semantic_layer']['rows_run']:.1%} of rows "
        f"({report['semantic_layer']['windows_per_row']:.2f} windows per row)",
        "per source prefix:",
    ]
    for p, c in report["per_source"].items():
        lines.append(f"  {p:45s} n={c['rows']:4d}  recall {c['recall']:.3f}  FPR {c['fpr']:.3f}")
    for name, v in report.get("evasion", {}).items():
        if name == "attacks":
            continue
        if name == "plain_recall":
            lines.append(f"evasion on {report['evasion']['attacks']} attacks: plain recall {v:.3f}")
        else:
            lines.append(f"  {name:12s} recall {v['recall']:.3f}  ({v['ratio_to_plain']:.2f} x plain)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        rows = [json.loads(line) for line in args.file.read_text(encoding="utf-8").split("\n") if line.strip()]
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        rows = rows[: args.limit]
    report = evaluate(rows, _detector(args), args.evasion, args.evasion_sample, args.surface)
    y, score = report.pop("_y"), report.pop("_score")
    plot(y, score, args.plot)
    report.update({"file": str(args.file), "rules": str(args.rules), "semantic": args.semantic,
                   "semantic_gate": args.semantic_gate, "semantic_windows": args.semantic_windows,
                   "window_penalty": args.window_penalty, "segment_surfaces": args.segment_surfaces,
                   "segment_threshold": args.segment_threshold, "surface": args.surface})  # fmt: skip
    args.report.write_text(json.dumps(report, indent=2))
    print(show(report))
    print(f"report: {args.report}  plot: {args.plot}")
    return 0
