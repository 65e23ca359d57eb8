"""``guardrail-proxy shadow report FILE``: summarise a shadow JSONL file per candidate.

For each candidate: how many comparisons (and failed calls), latency delta (shadow minus
main, mean and median), token and cost deltas, the similarity distribution, and how
often the output anomaly guards fired on either side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

BUCKETS = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a shadow JSONL file (record_path in rules/shadow.yaml)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _tokens(side: dict[str, Any]) -> int | None:
    p, c = side.get("prompt_tokens"), side.get("completion_tokens")
    return None if p is None or c is None else int(p) + int(c)


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None}
    return {"mean": round(statistics.fmean(values), 3), "median": round(statistics.median(values), 3)}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _similarity(values: list[float], methods: Counter[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(values), "methods": dict(methods)}
    if values:
        out |= {f"p{int(q * 100)}": round(_quantile(values, q), 3) for q in (0.1, 0.5, 0.9)}
        out["min"], out["max"] = round(min(values), 3), round(max(values), 3)
        hist: dict[str, int] = {}
        low = 0.0
        for top in BUCKETS:
            hist[f"{low:.2f}-{top:.2f}"] = sum(1 for v in values if low <= v < top or (top == 1.0 and v == 1.0))
            low = top
        out["histogram"] = hist
    return out


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[f"{r.get('candidate')} ({r.get('shadow', {}).get('model')})"].append(r)
    out: dict[str, dict[str, Any]] = {}
    for name, rows in sorted(groups.items()):
        ok = [r for r in rows if not r["shadow"].get("error")]
        lat = [
            r["shadow"]["latency_ms"] - r["main"]["latency_ms"] for r in ok if r["main"].get("latency_ms") is not None
        ]
        tok = [
            float(t1 - t0)
            for r in ok
            if (t0 := _tokens(r["main"])) is not None and (t1 := _tokens(r["shadow"])) is not None
        ]
        usd = [
            r["shadow"]["cost_usd"] - r["main"]["cost_usd"]
            for r in ok
            if r["main"].get("cost_usd") is not None and r["shadow"].get("cost_usd") is not None
        ]
        sims = [float(r["compare"]["similarity"]) for r in ok if r["compare"].get("similarity") is not None]
        methods = Counter(
            str(r["compare"].get("similarity_method")) for r in ok if r["compare"].get("similarity") is not None
        )
        out[name] = {
            "n": len(rows),
            "errors": Counter(str(r["shadow"]["error"]) for r in rows if r["shadow"].get("error")),
            "latency_delta_ms": _stats(lat),
            "token_delta": _stats(tok),
            "cost_delta_usd": {**_stats(usd), "total": round(sum(usd), 6) if usd else None, "priced": len(usd)},
            "length_ratio": _stats([r["compare"]["chars_shadow"] / max(1, r["compare"]["chars_main"]) for r in ok]),
            "similarity": _similarity(sims, methods),
            "anomalies_main": Counter(a for r in rows for a in r["compare"].get("anomalies_main", [])),
            "anomalies_shadow": Counter(a for r in rows for a in r["compare"].get("anomalies_shadow", [])),
        }
    return out


def read(path: Path) -> tuple[list[dict[str, Any]], int]:
    records, bad = [], 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not {"main", "shadow", "compare"} <= row.keys():
                    raise ValueError
                records.append(row)
            except ValueError:
                bad += 1
    return records, bad


def _print(summary: dict[str, dict[str, Any]], bad: int) -> None:
    for name, s in summary.items():
        print(f"candidate {name}: n={s['n']} errors={dict(s['errors']) or 0}")
        for key in ("latency_delta_ms", "token_delta", "cost_delta_usd", "length_ratio"):
            v = s[key]
            extra = f" total={v['total']}" if key == "cost_delta_usd" else ""
            print(f"  {key:<18} mean={v['mean']} median={v['median']}{extra}")
        sim = s["similarity"]
        if sim["n"]:
            print(
                f"  similarity         n={sim['n']} p10={sim['p10']} p50={sim['p50']} p90={sim['p90']} "
                f"min={sim['min']} max={sim['max']} methods={sim['methods']}"
            )
            print("  histogram          " + " ".join(f"[{k}]={n}" for k, n in sim["histogram"].items()))
        else:
            print("  similarity         n=0")
        print(f"  anomalies          main={dict(s['anomalies_main'])} shadow={dict(s['anomalies_shadow'])}")
    if not summary:
        print("no shadow records")
    if bad:
        print(f"skipped {bad} unreadable line(s)")


def run(args: argparse.Namespace) -> int:
    try:
        records, bad = read(args.file)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    summary = summarise(records)
    if args.json:
        print(json.dumps({"candidates": summary, "skipped_lines": bad}, indent=2))
    else:
        _print(summary, bad)
    return 0
