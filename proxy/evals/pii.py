"""``guardrail-proxy eval pii FILE``: span-level quality and throughput of the PII guard vs vanilla Presidio.

Rows: JSONL ``{"text", "spans": [{"start", "end", "entity_type"}], "source"}``. Gold types are
mapped to Presidio names (GPE, STREET_ADDRESS, ZIP_CODE → LOCATION). Both systems run on the
same rows in the same process, interleaved chunk by chunk (so the throughput ratio holds on a
shared machine), and the report says whether the targets hold (speed-up >= 2x at equal or
better recall and leak recall, F2 >= vanilla + 0.15):

* ours: ``PiiEngine`` from pii.yaml (thresholds, allow-list, YAML recognizers, batch ``nlp.pipe``,
  cache off so every row is really analysed);
* vanilla: Presidio as shipped: every predefined recognizer, the full spaCy pipeline of the same
  model (the one pii.yaml names unless ``--model``), default threshold, one ``analyze`` call
  per text.

A predicted span is correct when it overlaps a gold span of the same type; a gold span is found
when a predicted span of the same type overlaps it. F2 weighs recall 4x (a leak costs more than an
over-redaction). "leak recall" is the share of gold characters covered by any span the system
would redact (any type): 1 - leaked characters. Only ``--entities`` are scored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOLD_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "LOCATION", "ZIP_CODE": "LOCATION", "LOC": "LOCATION"}
SCORED = [
    "PERSON",
    "LOCATION",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_DRIVER_LICENSE",
]
STRUCTURED = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]

Span = tuple[int, int, str]


@dataclass
class Row:
    text: str
    gold: list[Span]


@dataclass
class Tally:
    pred: int = 0
    pred_ok: int = 0
    gold: int = 0
    gold_found: int = 0
    chars: int = 0
    chars_covered: int = 0

    def add(self, other: Tally) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def precision(self) -> float:
        return self.pred_ok / self.pred if self.pred else 1.0

    @property
    def recall(self) -> float:
        return self.gold_found / self.gold if self.gold else 1.0

    @property
    def f2(self) -> float:
        p, r = self.precision, self.recall
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    @property
    def leak_recall(self) -> float:
        return self.chars_covered / self.chars if self.chars else 1.0


@dataclass
class Result:
    name: str
    per: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    seconds: float = 0.0
    rows: int = 0
    chars: int = 0
    rows_clean: int = 0  # rows where no gold character leaked

    def overall(self, entities: list[str]) -> Tally:
        total = Tally()
        for e in entities:
            total.add(self.per[e])
        return total


def read_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                gold = [
                    (int(s["start"]), int(s["end"]), GOLD_MAP.get(s["entity_type"], s["entity_type"]))
                    for s in obj["spans"]
                ]
                rows.append(Row(str(obj["text"]), gold))
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{n}: not a PII row ({exc})") from None
    return rows


def score(res: Result, row: Row, predicted: list[Span], entities: list[str]) -> None:
    scored = set(entities)
    preds = [p for p in predicted if p[2] in scored]
    golds = [g for g in row.gold if g[2] in scored]

    def overlaps(a: Span, b: Span) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for p in preds:
        t = res.per[p[2]]
        t.pred += 1
        t.pred_ok += any(overlaps(p, g) and g[2] == p[2] for g in golds)
    covered = [False] * len(row.text)
    for s, e, _ in predicted:
        for i in range(max(0, s), min(e, len(row.text))):
            covered[i] = True
    clean = True
    for g in golds:
        t = res.per[g[2]]
        t.gold += 1
        t.gold_found += any(overlaps(p, g) and p[2] == g[2] for p in preds)
        chars = [i for i in range(g[0], g[1]) if not row.text[i].isspace()]
        hit = sum(covered[i] for i in chars)
        t.chars += len(chars)
        t.chars_covered += hit
        clean = clean and hit == len(chars)
    res.rows_clean += clean


Analyze = Callable[[list[str]], list[list[Span]]]


def run_systems(systems: list[tuple[str, Analyze]], rows: list[Row], batch: int, entities: list[str]) -> list[Result]:
    """Each system on the same rows, interleaved chunk by chunk (``batch`` rows: ours takes the
    chunk as one batch, vanilla one text at a time) so that load from other processes falls on
    both alike and the throughput ratio stays comparable on a shared machine."""
    results = [Result(name) for name, _ in systems]
    for _, analyze in systems:
        analyze([rows[0].text])  # warm-up
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        texts = [r.text for r in chunk]
        for res, (_, analyze) in zip(results, systems, strict=True):
            t0 = time.perf_counter()
            preds = analyze(texts)
            res.seconds += time.perf_counter() - t0
            for row, pred in zip(chunk, preds, strict=True):
                score(res, row, pred, entities)
    for res in results:
        res.rows = len(rows)
        res.chars = sum(len(r.text) for r in rows)
    return results


def ours(config: Path) -> Analyze:
    from proxy.guards.pii.config import load
    from proxy.guards.pii.engine import PiiEngine

    cfg = load(config).model_copy(update={"cache_size": 0})
    engine = PiiEngine(cfg)

    def analyze(texts: list[str]) -> list[list[Span]]:
        return [[(f.start, f.end, f.entity) for f in found] for found in engine.analyze(texts)]

    return analyze


def vanilla(model: str) -> Analyze:
    from proxy.guards.pii.engine import vanilla_analyzer

    engine = vanilla_analyzer(model)

    def analyze(texts: list[str]) -> list[list[Span]]:
        return [[(r.start, r.end, r.entity_type) for r in engine.analyze(text=t, language="en")] for t in texts]

    return analyze


def fmt(t: Tally) -> str:
    return f"{t.precision:6.3f} {t.recall:6.3f} {t.f2:6.3f} {t.leak_recall:6.3f}"


def report(results: list[Result], entities: list[str], out: Any = None) -> None:
    out = out or sys.stdout
    head = "".join(f" | {r.name:^27}" for r in results)
    sub = "".join(" |   prec    rec     F2   leak" for _ in results)
    print(f"{'entity':<18} {'gold':>5}{head}", file=out)
    print(f"{'':<18} {'':>5}{sub}", file=out)
    present = [e for e in entities if any(r.per[e].gold or r.per[e].pred for r in results)]
    for e in present:
        print(f"{e:<18} {results[0].per[e].gold:>5}" + "".join(f" | {fmt(r.per[e])}" for r in results), file=out)
    overall = [r.overall(entities) for r in results]
    print(f"{'OVERALL':<18} {overall[0].gold:>5}" + "".join(f" | {fmt(t)}" for t in overall), file=out)
    structured = [r.overall([e for e in STRUCTURED if e in entities]) for r in results]
    print(f"{'STRUCTURED':<18} {structured[0].gold:>5}" + "".join(f" | {fmt(t)}" for t in structured), file=out)
    print("", file=out)
    for r in results:
        print(
            f"{r.name}: {r.rows} rows, {r.chars} chars in {r.seconds:.2f} s = {r.rows / r.seconds:.1f} rows/s, "
            f"{r.chars / r.seconds / 1000:.1f} kchars/s; rows with no leaked character {r.rows_clean}/{r.rows}",
            file=out,
        )
    if len(results) == 2:
        a, b = results
        speed = (a.rows / a.seconds) / (b.rows / b.seconds)
        ta, tb = overall
        as_good = ta.recall >= tb.recall and ta.leak_recall >= tb.leak_recall
        print(
            f"speed-up {a.name} vs {b.name}: {speed:.2f}x (target >= 2.00x: {'met' if speed >= 2 else 'NOT met'}) "
            f"at recall {ta.recall:.3f} vs {tb.recall:.3f} and leak recall {ta.leak_recall:.3f} vs "
            f"{tb.leak_recall:.3f} (equal or better: {'yes' if as_good else 'NO'})",
            file=out,
        )
        print(
            f"F2 {ta.f2:.3f} vs {tb.f2:.3f}: difference {ta.f2 - tb.f2:+.3f} (target >= +0.150: "
            f"{'met' if ta.f2 - tb.f2 >= 0.15 else 'NOT met'}); structured leak recall "
            f"{structured[0].leak_recall:.3f} (target >= 0.950)",
            file=out,
        )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="JSONL rows {text, spans: [{start, end, entity_type}], source}")
    parser.add_argument("--config", type=Path, default=Path("rules/pii.yaml"), help="pii.yaml to evaluate")
    parser.add_argument("--entities", default=",".join(SCORED), help="comma-separated entity types to score")
    parser.add_argument("--batch", type=int, default=32, help="rows per batch for our engine")
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows")
    parser.add_argument("--no-vanilla", action="store_true", help="skip the vanilla Presidio baseline")
    parser.add_argument("--model", default=None, help="spaCy model for vanilla (default: the model pii.yaml names)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from proxy.rules.loader import RuleLoadError

    rows = read_rows(args.file)
    if args.limit:
        rows = rows[: args.limit]
    if not rows:
        print("no rows", file=sys.stderr)
        return 2
    entities = [e.strip() for e in args.entities.split(",") if e.strip()]
    try:
        mine = ours(args.config)
    except RuleLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    systems: list[tuple[str, Analyze]] = [("ours", mine)]
    if not args.no_vanilla:
        from proxy.guards.pii.config import load

        model = args.model or load(args.config).model
        systems.append(("vanilla", vanilla(model)))
    results = run_systems(systems, rows, max(1, args.batch), entities)
    print(f"{args.file}: {len(rows)} rows; scored entities: {', '.join(entities)}")
    print("span match = same type and overlap; leak = gold chars covered by any redaction\n")
    report(results, entities)
    return 0
