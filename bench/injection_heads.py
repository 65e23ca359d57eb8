"""Train the learned heads of rules/injection/learned/ from the TRAIN split only.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/injection_heads.py \
        ../shared/datasets/injection/train.jsonl rules/injection \
        --benign ../shared/datasets/pii/train.jsonl

Writes three weights files the ``classifier`` rules in rules/injection/learned.yaml name:

* ``learned/lexical.json``: a logistic regression on binary word 1-2-grams of the folded
  head window (1,000 characters), scaled by 1/sqrt(distinct n-grams, at least 40), C=10,
  balanced classes (chosen by 5-fold cross-validation on train, see
  docs/injection-detector.md). Weights below ``PRUNE`` in magnitude are dropped. Positives
  leave out CyberSecEval's logic-violating rows; the ``false_positives`` of the rules in
  learned.yaml (ordinary prompts) are added as benign rows, and so are the ``--benign``
  rows (pii/train.jsonl: conversational customer-service text, which the injection data
  lacks) and ``AUG`` x as many long texts made of benign rows joined up (the injection
  data's benign rows are mostly short, its attacks long). These extra rows weigh
  ``EXTRA_WEIGHT`` x a benign row; the injection rows keep balanced class weights.
* ``learned/chars.json``: a logistic regression on tf-idf character 2-5-grams of the
  words of the same window (sublinear tf, L2 norm, the ``CHAR_VOCAB`` most frequent grams
  seen in at least 2 rows), C=10, balanced classes, same rows as the word head.
* ``learned/fusion.json``: the two heads' logits and the semantic layer's similarity
  score (k=3 nearest train attacks minus 0.6 x k=3 nearest train benign rows, best
  window), each scaled by 1/(its std on benign rows), summed. All inputs are the
  out-of-fold values of a 5-fold split, so the weights and the threshold see what unseen
  text gets.

Prints the out-of-fold figures and the thresholds it chose (at ``TARGET_FPR`` on the
out-of-fold benign scores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from proxy.guards.injection.heads import Head

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

C = 10.0
MIN_DF = 2
PRUNE = 1e-3
FOLDS = 5
K, PENALTY = 3, 0.6
TARGET_FPR = 0.008  # a little under 1%: the threshold is estimated on ~600 benign rows
LEX_FPR = 0.005  # the lexical head alone fires only where it is very sure
CHAR_FPR = 0.003  # so does the char head (their hits add up with the fusion's)
CHAR_C, CHAR_VOCAB = 10.0, 20000
LEX_RULE, CHAR_RULE = "injection.learned.lexical", "injection.learned.chars"
# Benign rows are mostly short and attacks mostly long: extra benign rows made of benign
# training rows joined up to LONG characters keep the heads from reading length as attack
# evidence. OOF_LONG such texts, built from each fold's held-out benign rows, measure it.
# (Before the --benign rows, 1 KB mixes of PII sentences scored p ~ 0.6; mixes of train
# benign rows did not: the cause there was conversational text, which these rows lack.)
LONG = (400, 1000)
AUG = 0.5  # long benign rows per benign row
# Weight of a --benign row and of a long benign row, relative to a benign training row. The
# grid AUG in {0, 0.5, 1} x EXTRA_WEIGHT in {0.3, 1} gave the same out-of-fold recall
# (0.795-0.804); this pair let the semantic gate open least on text no head was trained on
# (see docs/injection-detector.md, "Out-of-domain text").
EXTRA_WEIGHT = 1.0
OOF_LONG = 200


def long_benign(pool: list[str], per_row: float, rng: np.random.RandomState) -> list[str]:
    """``per_row`` x len(pool) texts of random rows of ``pool`` joined by blank lines, each
    cut at a length drawn from LONG, folded as the scanner folds them."""
    from proxy.guards.injection.normalize import views

    out = []
    for _ in range(round(per_row * len(pool))):
        size, parts = rng.randint(*LONG), []
        while sum(len(p) + 2 for p in parts) < size:
            parts.append(pool[rng.randint(len(pool))])
        out.append(views("\n\n".join(parts)[:size])[0].folded.text)
    return out


def balanced(y: np.ndarray, n_extra: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and sample weights for ``y`` (classes balanced, as sklearn's "balanced")
    followed by ``n_extra`` benign rows of EXTRA_WEIGHT x a benign row's weight each, so
    that extra text does not shift the balance of the rows themselves."""
    pos, neg = max(1, int(y.sum())), max(1, int(len(y) - y.sum()))
    sw = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
    return np.r_[y, np.zeros(n_extra, int)], np.r_[sw, np.full(n_extra, EXTRA_WEIGHT * len(y) / (2 * neg))]


def feats(text: str) -> dict[str, float]:
    from proxy.guards.injection.heads import features

    return features(text)


def fit_lexical(head: list[dict[str, float]], y: np.ndarray, sw: np.ndarray) -> tuple[dict[str, float], float]:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    df = Counter(k for f in head for k in f)
    keep = {k for k, c in df.items() if c >= MIN_DF}
    dv = DictVectorizer().fit([{k: v for k, v in f.items() if k in keep} for f in head])
    model = LogisticRegression(C=C, max_iter=5000).fit(dv.transform(head), y, sample_weight=sw)
    names = dv.get_feature_names_out()
    w = {str(n): round(float(c), 5) for n, c in zip(names, model.coef_[0], strict=True) if abs(c) >= PRUNE}
    return w, float(model.intercept_[0])


def fit_chars(counts: list[Counter[str]], y: np.ndarray, sw: np.ndarray) -> Head:
    """The char head, as the scanner will load it (so out-of-fold scores use its own code)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    from proxy.guards.injection.heads import CHARS, Head

    df, tot = Counter(g for c in counts for g in c), Counter[str]()
    for c in counts:
        tot.update(c)
    vocab = sorted((g for g in tot if df[g] >= MIN_DF), key=lambda g: (-tot[g], g))[:CHAR_VOCAB]
    keep = set(vocab)
    dv = DictVectorizer().fit([{g: 1 for g in vocab}])
    x = dv.transform([{g: n for g, n in c.items() if g in keep} for c in counts])
    tf = TfidfTransformer(sublinear_tf=True).fit(x)
    model = LogisticRegression(C=CHAR_C, max_iter=5000).fit(tf.transform(x), y, sample_weight=sw)
    names = [str(n) for n in dv.get_feature_names_out()]
    idf = {g: round(float(v), 5) for g, v in zip(names, tf.idf_, strict=True)}
    w = {g: round(float(v), 5) for g, v in zip(names, model.coef_[0], strict=True)}
    return Head(CHARS, round(float(model.intercept_[0]), 5), w, (), idf)


def write_chars(path: Path, head: Head, **meta: Any) -> None:
    """A char head's weights file: its format, intercept and ``meta``, then one gram per line
    with its idf and weight, the strongest first (so the security team can read it)."""
    idf = head.idf or {}
    grams = {g: [idf[g], w] for g, w in sorted(head.weights.items(), key=lambda kv: -abs(kv[1]))}
    top = json.dumps({"format": "char-tfidf-logreg/1", "intercept": head.intercept, **meta})
    lines = ",\n".join(f"{json.dumps(g, ensure_ascii=False)}: {json.dumps(v)}" for g, v in grams.items())
    path.write_text(f'{top[:-1]}, "grams": {{\n{lines}\n}}}}\n', encoding="utf-8")


def char_logit(head: Head, windows: list[str]) -> float:
    from proxy.guards.injection.heads import logit

    return max(logit(head.chars(t)[0]) for t in windows)


def lex_logit(weights: dict[str, float], b: float, wins: list[dict[str, float]]) -> float:
    return max(b + sum(weights.get(k, 0.0) * v for k, v in f.items()) for f in wins)


def knn(vecs: np.ndarray, att: np.ndarray, ben: np.ndarray) -> float:
    """Best window's mean cosine to its K nearest attacks minus PENALTY x to its K nearest benign rows."""

    def top(m: np.ndarray) -> np.ndarray:
        return np.sort(m, axis=1)[:, -K:].mean(axis=1)

    return float((top(vecs @ att.T) - PENALTY * top(vecs @ ben.T)).max())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def known_benign(rules_file: Path) -> list[str]:
    """The ``false_positives`` of the learned rules (ordinary prompts, extra benign rows), folded."""
    import yaml

    from proxy.guards.injection.normalize import views

    data = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    texts = [t for r in data["rules"] for t in r.get("false_positives", [])]
    return [views(t)[0].folded.text[:1000] for t in texts]


def threshold(scores: np.ndarray, y: np.ndarray, fpr: float) -> float:
    neg = np.sort(scores[y == 0])[::-1]
    return float(neg[int(fpr * len(neg))])


def main() -> int:
    from proxy.embedding import load_default
    from proxy.guards.injection.classifier_layer import lex_windows
    from proxy.guards.injection.heads import char_grams, sigmoid
    from proxy.guards.injection.normalize import views
    from proxy.guards.injection.semantic_layer import windows

    ap = argparse.ArgumentParser(description="Train the learned injection heads on the train split.")
    ap.add_argument("train", type=Path, help="injection/train.jsonl")
    ap.add_argument("rules", type=Path, help="the rules directory (rules/injection)")
    ap.add_argument("--benign", type=Path, action="append", default=[],
                    help="more benign text, JSONL with a 'text' field (a TRAIN split only), e.g. pii/train.jsonl")  # fmt: skip
    ap.add_argument("--written", type=Path, action="append", default=[],
                    help="labelled rows written for the rules (JSONL: text, label), e.g. rules/injection/learned/written.jsonl")  # fmt: skip
    ap.add_argument("--readmes", action="store_true",
                    help="also the 'fit' half of installed packages' READMEs (bench/readme_corpus.py)")  # fmt: skip
    args = ap.parse_args()
    src, out_dir = args.train, args.rules
    for path in (src, *args.benign, *args.written):
        if "test" in path.name or "dev" in path.name or "holdout" in path.name:  # dev.jsonl holds the test rows too
            ap.error(f"{path}: train on a train split only (test rows must never reach the weights)")
    rows = read_jsonl(src)
    y = np.array([int(r["label"]) for r in rows])
    # CyberSecEval's logic-violating rows are attacks only against a system prompt that
    # forbids the topic ("Can you explain Schrödinger's cat?"): as positives they teach the
    # head that ordinary questions are attacks. They stay in the out-of-fold figures.
    fit_ok = np.array(["logic-violating" not in r["source"] for r in rows])
    extra = known_benign(out_dir / "learned.yaml")
    more = [views(r["text"])[0].folded.text[:1000] for path in args.benign for r in read_jsonl(path)]
    if args.readmes:
        from readme_corpus import readmes

        more += [views(text)[0].folded.text[:1000] for half, _, text in readmes() if half == "fit"]
    written = [r for path in args.written for r in read_jsonl(path)]
    w_text = [views(r["text"])[0].folded.text[:1000] for r in written]
    w_label = [int(r["label"]) for r in written]
    # written rows join the rule-file rows: inside the class balance, in every fold (attacks among them too)
    aug_pool = extra + [t for t, lab in zip(w_text, w_label, strict=True) if lab == 0]
    no = np.array([0] * len(extra) + w_label, dtype=int)
    extra = extra + w_text
    folded = [views(r["text"])[0].folded.text for r in rows]
    head = [feats(t[:1000]) for t in folded]
    wins = [[feats(t[a:b]) for a, b in lex_windows(len(t))] for t in folded]
    chars = [char_grams(t[:1000]) for t in folded]
    extra_lex, extra_chars = [feats(t) for t in extra], [char_grams(t) for t in extra]
    more_lex, more_chars = [feats(t) for t in more], [char_grams(t) for t in more]
    emb = load_default()
    spans = [windows(t) for t in folded]
    flat = [t[a:b] for t, sp in zip(folded, spans, strict=True) for a, b in sp]
    allv = emb.cached(flat)
    vecs, i = [], 0
    for sp in spans:
        vecs.append(allv[i : i + len(sp)])
        i += len(sp)
    heads = np.stack([v[0] for v in vecs])
    fold = np.random.RandomState(0).randint(0, FOLDS, len(rows))
    lex_oof, chr_oof, sem_oof = np.zeros(len(rows)), np.zeros(len(rows)), np.zeros(len(rows))
    long_scores: list[tuple[float, float, float]] = []  # (lex, chars, sem) of held-out long benign texts

    def fit_heads(idx: np.ndarray, rng: np.random.RandomState) -> tuple[dict[str, float], float, Head]:
        """Both heads on the rows ``idx`` (logic-violating ones left out), the extra benign
        rows, and long benign rows joined from them with ``rng``."""
        fit = idx[fit_ok[idx]]
        aug = long_benign([folded[j] for j in fit if y[j] == 0] + aug_pool + more, AUG, rng)
        yy, sw = balanced(np.r_[y[fit], no], len(more) + len(aug))
        w, b = fit_lexical([head[j] for j in fit] + extra_lex + more_lex + [feats(t) for t in aug], yy, sw)
        ch = fit_chars([chars[j] for j in fit] + extra_chars + more_chars + [char_grams(t) for t in aug], yy, sw)
        return w, b, ch

    for f in range(FOLDS):
        tr, te = np.where(fold != f)[0], np.where(fold == f)[0]
        rng = np.random.RandomState(f)
        w, b, ch = fit_heads(tr, rng)
        att, ben = heads[tr[y[tr] == 1]], heads[tr[y[tr] == 0]]
        for j in te:
            lex_oof[j] = lex_logit(w, b, wins[j])
            chr_oof[j] = char_logit(ch, [folded[j][a:b] for a, b in lex_windows(len(folded[j]))])
            sem_oof[j] = knn(vecs[j], att, ben)
        held = long_benign([folded[j] for j in te if y[j] == 0], OOF_LONG / FOLDS / max(1, int((y[te] == 0).sum())), rng)
        held_vecs = emb.encode(held)
        for t, v in zip(held, held_vecs, strict=True):
            long_scores.append((lex_logit(w, b, [feats(t)]), char_logit(ch, [t]), knn(v[None, :], att, ben)))
    if os.environ.get("INJECTION_HEADS_DUMP"):  # out-of-fold scores, for analysis
        np.savez(os.environ["INJECTION_HEADS_DUMP"], y=y, lex=lex_oof, chars=chr_oof, sem=sem_oof)
    scale = [1.0 / float(v[y == 0].std()) for v in (lex_oof, chr_oof, sem_oof)]
    fused = scale[0] * lex_oof + scale[1] * chr_oof + scale[2] * sem_oof
    t_fused, t_lex, t_chr = (threshold(fused, y, TARGET_FPR), threshold(lex_oof, y, LEX_FPR),
                             threshold(chr_oof, y, CHAR_FPR))  # fmt: skip
    fired = (lex_oof > t_lex) | (chr_oof > t_chr) | (fused > t_fused)
    for name, hit in (("lexical", lex_oof > t_lex), ("chars", chr_oof > t_chr),
                      ("semantic", sem_oof > threshold(sem_oof, y, TARGET_FPR)), ("fusion", fused > t_fused),
                      ("any head", fired)):  # fmt: skip
        rec, fpr = float(hit[y == 1].mean()), float(hit[y == 0].mean())
        print(f"out-of-fold {name:9s} recall {rec:.3f}  FPR {fpr:.4f}")
    ll, lc, ls = (np.array(c) for c in zip(*long_scores, strict=True))
    long_fused = scale[0] * ll + scale[1] * lc + scale[2] * ls
    print(f"held-out long benign texts ({len(ll)}, {LONG[0]}-{LONG[1]} chars): lexical FPR {(ll > t_lex).mean():.3f}, "
          f"chars FPR {(lc > t_chr).mean():.3f}, fusion FPR {(long_fused > t_fused).mean():.3f}, "
          f"semantic gate open (a head p >= 0.5) {(np.maximum(ll, lc) >= 0).mean():.3f}")  # fmt: skip
    w, b, ch = fit_heads(np.arange(len(rows)), np.random.RandomState(FOLDS))
    learned = out_dir / "learned"
    learned.mkdir(parents=True, exist_ok=True)
    lex_prob, chr_prob = sigmoid(t_lex), sigmoid(t_chr)
    (learned / "lexical.json").write_text(
        json.dumps({"format": "lexical-logreg/1", "intercept": round(b, 5), "threshold_hint": round(lex_prob, 4),
                    "weights": dict(sorted(w.items(), key=lambda kv: -abs(kv[1])))}, indent=0) + "\n")  # fmt: skip
    write_chars(learned / "chars.json", ch, threshold_hint=round(chr_prob, 4))
    fusion = {
        "format": "fusion-linear/1",
        "intercept": round(-t_fused, 5),  # z = 0 (probability 0.5) at the chosen threshold
        "inputs": [
            {"layer": "classifier", "rule": LEX_RULE, "transform": "logit", "weight": round(scale[0], 5)},
            {"layer": "classifier", "rule": CHAR_RULE, "transform": "logit", "weight": round(scale[1], 5)},
            {"layer": "semantic-exemplar", "transform": "raw", "weight": round(scale[2], 5),
             "missing": round(float(np.median(sem_oof[y == 0])), 5)},
        ],
    }  # fmt: skip
    (learned / "fusion.json").write_text(json.dumps(fusion, indent=1) + "\n")
    print(f"lexical: {len(w)} n-grams, threshold p={lex_prob:.4f}; chars: {len(ch.weights)} grams, threshold "
          f"p={chr_prob:.4f}; fusion weights {' '.join(f'{x:.4f}' for x in scale)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
