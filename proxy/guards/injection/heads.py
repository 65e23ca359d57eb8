"""Learned heads: the weights files that ``classifier`` rules name (rules/injection/learned/),
loaded and checked, and the features and scores they compute on one text.

The window heads and the fusion are trained on the train split only by
``bench/injection_heads.py`` (the planted-instruction head, a char head that reads
segments, by ``bench/injection_planted.py``):

* ``lexical-logreg/1``: a logistic regression on binary word 1-2-grams of the folded
  text, scaled by 1/sqrt(the number of distinct n-grams in the window, at least ``MIN_GRAMS``). The file lists
  every n-gram with its weight, so the security team can read what the head has learned.
  Cheap (no model): runs with the regex and fuzzy layers on every 1,000-character window;
  its probability also gates the semantic layer in ``gated`` mode. Score = probability of
  the best window; span = that window's n-gram with the largest weight.
* ``char-tfidf-logreg/1``: a logistic regression on character 2-5-grams of each word
  (padded with a space each side), tf-idf weighted (1 + log count, times the gram's idf)
  and L2-normalised. It reads spellings and word pieces the word head cannot (inflected
  and foreign words, run-together and partly obfuscated text). The file lists each gram
  with its idf and weight. Same windows and span rule as the word head.
* ``fusion-linear/1``: a weighted sum of the heads' logits and the semantic layer's best
  exemplar score (``missing`` stands in when the semantic layer did not run), as a
  probability; the detector computes it per view from the other findings. An input names
  a ``layer`` and, for a classifier, optionally the ``rule`` whose head it reads.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from proxy.guards.injection.masks import MASKS, masked

TOKEN = re.compile(r"[a-z0-9']+")
LEXICAL = "lexical-logreg/1"
CHARS: Literal["char-tfidf-logreg/1"] = "char-tfidf-logreg/1"
FUSION = "fusion-linear/1"
HEADS = (LEXICAL, CHARS)  # formats that score text (the rest combine other layers)
CHAR_N = (2, 5)
WORD_CACHE = 50_000  # words per char head whose known grams are kept
CACHED_WORD = 40  # longer words are not cached
MIN_GRAMS = 40  # short texts carry little lexical evidence: scale as if they had this many n-grams


def ngrams(text: str) -> dict[str, tuple[int, int]]:
    """Distinct word 1- and 2-grams of a (folded) text, each with its first span."""
    toks = [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]
    out: dict[str, tuple[int, int]] = {}
    for i, (w, a, b) in enumerate(toks):
        out.setdefault(w, (a, b))
        if i + 1 < len(toks):
            out.setdefault(f"{w} {toks[i + 1][0]}", (a, toks[i + 1][2]))
    return out


def gram_scale(n_grams: int) -> float:
    """The value of each present n-gram feature: 1/sqrt(n), short texts as if they had MIN_GRAMS."""
    return 1.0 / math.sqrt(max(n_grams, MIN_GRAMS))


def features(text: str) -> dict[str, float]:
    """The lexical head's input for one window (what training and scanning both use)."""
    grams = ngrams(text)
    return dict.fromkeys(grams, gram_scale(len(grams)))


def word_grams(word: str, lo: int = CHAR_N[0], hi: int = CHAR_N[1]) -> Counter[str]:
    """The character ``lo``..``hi``-grams of one word padded with a space each side."""
    w = f" {word} "
    return Counter(w[i : i + n] for n in range(lo, min(hi, len(w)) + 1) for i in range(len(w) - n + 1))


def char_grams(text: str, lo: int = CHAR_N[0], hi: int = CHAR_N[1]) -> Counter[str]:
    """Counts of the character grams of each whitespace-separated word (what the char head
    reads, in training too)."""
    out: Counter[str] = Counter()
    for word, k in Counter(text.split()).items():
        for g, c in word_grams(word, lo, hi).items():
            out[g] += c * k
    return out


def _char_spans(text: str, gram: str) -> tuple[int, int]:
    """The first word of ``text`` that holds ``gram`` where the gram says (a padding space:
    at the word's start or end): the span an explanation names, a whole word."""
    core = gram.strip()
    if not core:
        return (0, 0)
    head = r"(?<!\S)" if gram.startswith(" ") else ""
    tail = r"(?!\S)" if gram.endswith(" ") else ""
    m = re.search(head + re.escape(core) + tail, text) or re.search(re.escape(core), text)
    if m is None:
        return (0, 0)
    a, b = m.start(), m.end()
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    while b < len(text) and not text[b].isspace():
        b += 1
    return (a, b)


INPUT_LAYERS = ("classifier", "semantic-exemplar")


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    if math.isnan(z):  # never a block by accident (min/max would turn NaN into 60)
        return 0.0
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class FusionInput:
    layer: str  # one of INPUT_LAYERS
    transform: str  # "logit" or "raw"
    weight: float
    missing: float = 0.0  # stands in when the layer did not run
    rule: str = ""  # classifier inputs: the rule whose head this reads ("": the best of all)

    @property
    def key(self) -> str:
        """What the input reads: a layer, or ``classifier:<rule id>`` for one head."""
        return f"{self.layer}:{self.rule}" if self.rule else self.layer


@dataclass(frozen=True)
class Head:
    """One loaded weights file."""

    format: Literal["lexical-logreg/1", "char-tfidf-logreg/1", "fusion-linear/1"]
    intercept: float
    weights: dict[str, float]  # lexical: n-gram -> weight; chars: gram -> weight (idf apart)
    inputs: tuple[FusionInput, ...] = ()
    idf: dict[str, float] | None = None  # chars: gram -> idf (every gram of the vocabulary)
    mask: tuple[str, ...] = ()  # MASKS applied to a text before it is read (its span is then the whole text)
    # chars, derived from idf and weights: the vocabulary as arrays for the scan
    _names: list[str] = field(init=False, default_factory=list, compare=False, repr=False)
    _index: dict[str, int] = field(init=False, default_factory=dict, compare=False, repr=False)
    _idf_arr: np.ndarray = field(init=False, default_factory=lambda: np.zeros(0), compare=False, repr=False)
    _w_arr: np.ndarray = field(init=False, default_factory=lambda: np.zeros(0), compare=False, repr=False)
    _word_cache: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path) -> Head:
        """Read and check a weights file; ``ValueError`` says what is wrong with it."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {path.name}: {exc}") from None
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt not in (*HEADS, FUSION):
            raise ValueError(f"{path.name}: format must be one of {LEXICAL!r}, {CHARS!r}, {FUSION!r}")
        mask = data.get("mask", [])
        if not isinstance(mask, list) or not set(mask) <= set(MASKS) or (mask and fmt == FUSION):
            raise ValueError(f"{path.name}: 'mask' must list some of {sorted(MASKS)} (word and char heads only)")
        try:
            b = float(data.get("intercept", 0.0))
            if fmt == CHARS:
                return cls._chars(path, b, data.get("grams"), tuple(mask))
            if fmt == LEXICAL:
                w = data.get("weights")
                if not isinstance(w, dict) or not w:
                    raise ValueError("'weights' must be a non-empty mapping of n-gram to weight")
                weights = {str(k): float(v) for k, v in w.items()}
                if not math.isfinite(b) or not all(math.isfinite(v) for v in weights.values()):
                    raise ValueError("intercept and weights must be finite numbers (no NaN or Infinity)")
                return cls(fmt, b, weights, mask=tuple(mask))
            ins = tuple(
                FusionInput(
                    str(i["layer"]),
                    str(i["transform"]),
                    float(i["weight"]),
                    float(i.get("missing", 0.0)),
                    str(i.get("rule", "")),
                )
                for i in data["inputs"]
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path.name}: {exc}") from None
        if not math.isfinite(b) or not all(math.isfinite(i.weight) and math.isfinite(i.missing) for i in ins):
            raise ValueError(f"{path.name}: intercept and weights must be finite numbers")
        for i in ins:
            if i.layer not in INPUT_LAYERS or i.transform not in ("logit", "raw"):
                raise ValueError(f"{path.name}: fusion input {i.layer!r}/{i.transform!r} is not one of {INPUT_LAYERS}")
        if not ins:
            raise ValueError(f"{path.name}: a fusion needs at least one input")
        return cls(fmt, b, {}, ins)

    @classmethod
    def _chars(cls, path: Path, b: float, grams: object, mask: tuple[str, ...] = ()) -> Head:
        if not isinstance(grams, dict) or not grams:
            raise ValueError("'grams' must be a non-empty mapping of gram to [idf, weight]")
        idf, weights = {}, {}
        for g, pair in grams.items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"gram {g!r}: want [idf, weight]")
            idf[str(g)], weights[str(g)] = float(pair[0]), float(pair[1])
        values = [b, *idf.values(), *weights.values()]
        if not all(math.isfinite(v) for v in values) or min(idf.values()) < 1:
            raise ValueError("intercept and weights must be finite numbers and every idf at least 1 (smoothed idf)")
        return cls(CHARS, b, weights, (), idf, mask)

    def score(self, text: str) -> tuple[float, tuple[int, int]]:
        """(probability, span of the strongest gram) for one window, either kind of head."""
        if self.mask:
            p, _ = self.score_masked(masked(text, self.mask))
            return p, (0, len(text))
        return self.score_masked(text)

    def score_masked(self, text: str) -> tuple[float, tuple[int, int]]:
        """``score`` of a text already masked (what training reads)."""
        return self.chars(text) if self.format == CHARS else self.lexical(text)

    def __post_init__(self) -> None:
        if self.idf is not None:
            names = list(self.idf)
            self._names.extend(names)
            self._index.update((g, i) for i, g in enumerate(names))
            object.__setattr__(self, "_idf_arr", np.array([self.idf[g] for g in names]))
            object.__setattr__(self, "_w_arr", np.array([self.weights[g] for g in names]))

    def _known_grams(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary index, count) of a word's grams the head knows (cached per head:
        most words of a text have been seen before)."""
        cache = self._word_cache
        got = cache.get(word)
        if got is None:
            pairs = [(self._index[g], c) for g, c in word_grams(word).items() if g in self._index]
            got = (np.array([i for i, _ in pairs], dtype=np.int64), np.array([c for _, c in pairs], dtype=float))
            if len(word) <= CACHED_WORD:  # long tokens (base64, hashes, minified code) never repeat
                got[0].flags.writeable = got[1].flags.writeable = False  # shared between threads
                if len(cache) >= WORD_CACHE:
                    cache.clear()
                cache[word] = got
        return got

    def chars(self, text: str) -> tuple[float, tuple[int, int]]:
        """tf-idf (1 + log count, L2-normalised) of the known grams, dotted with the weights."""
        parts = [(self._known_grams(word), k) for word, k in Counter(text.split()).items()]
        parts = [(g, k) for g, k in parts if len(g[0])]
        if not parts:
            return sigmoid(self.intercept), (0, 0)
        idx = np.concatenate([g[0] for g, _ in parts])
        cnt = np.concatenate([g[1] * k for g, k in parts])
        grams, inverse = np.unique(idx, return_inverse=True)
        x = (1.0 + np.log(np.bincount(inverse, weights=cnt))) * self._idf_arr[grams]
        contrib = self._w_arr[grams] * x / float(np.sqrt(x @ x))
        top = int(np.argmax(contrib))
        span = _char_spans(text, self._names[grams[top]]) if contrib[top] > 0 else (0, 0)
        return sigmoid(self.intercept + float(contrib.sum())), span

    def lexical(self, text: str) -> tuple[float, tuple[int, int]]:
        """(probability, span of the strongest n-gram) for one window."""
        grams = ngrams(text)
        if not grams:
            return sigmoid(self.intercept), (0, 0)
        scale = gram_scale(len(grams))
        z, best, span = self.intercept, 0.0, (0, 0)
        for g, sp in grams.items():
            w = self.weights.get(g)
            if w is not None:
                z += w * scale
                if w > best:
                    best, span = w, sp
        return sigmoid(z), span

    def fuse(self, values: dict[str, float | None]) -> tuple[float, str]:
        """(probability, the input that added most) from the best raw score per input layer
        (``values`` keyed by layer, and by ``classifier:<rule id>`` for each head)."""
        z, top, most = self.intercept, "", -math.inf
        for i in self.inputs:
            key = i.key
            v = values.get(key)
            x = i.missing if v is None else (logit(v) if i.transform == "logit" else v)
            z += i.weight * x
            if v is not None and i.weight * x > most:
                top, most = key, i.weight * x
        return sigmoid(z), top


def load_head(rules_dir: Path, model: str) -> Head:
    """The weights file a classifier rule names (``model``, inside ``rules_dir``), read once per
    version of the file: the loader's check and the detector share the parsed head."""
    rel = Path(model)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError("must be a path inside the rules directory")
    path = rules_dir / rel
    try:
        st = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {rel.name}: {exc.strerror or exc}") from None
    return _read_head(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _read_head(path: str, mtime_ns: int, size: int) -> Head:
    return Head.load(Path(path))
