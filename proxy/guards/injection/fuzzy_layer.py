"""Layer 2: fuzzy phrase matching with rapidfuzz over sliding windows.

Each phrase of k words is compared (``fuzz.ratio``) with every window of k-1 .. k+2
consecutive words of the folded text, so misspellings, an inserted or dropped word and
leftover punctuation still score high; the cost is linear in the text's length. A
cheap pre-filter skips a phrase when none of its distinctive words' first four letters
occur in the text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from proxy.guards.injection.fuse import LayerHit
from proxy.guards.injection.mentions import touches_mention
from proxy.guards.injection.normalize import View
from proxy.guards.injection.rules import InjectionRule

MAX_EXTRA_WORDS = 2  # a phrase of k words is compared with windows of k-1 .. k+2 words


@dataclass(frozen=True, slots=True)
class _Phrase:
    rule: InjectionRule
    text: str
    stems: tuple[str, ...]
    words: int


def _stems(phrase: str) -> tuple[str, ...]:
    words = [w for w in re.findall(r"[a-z]+", phrase) if len(w) >= 5]
    return tuple(w[:4] for w in words) or tuple(w[:3] for w in re.findall(r"[a-z]{3,}", phrase))


class _Windows:
    """Word windows of a text, only around the words a phrase's stems occur in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [m.span() for m in re.finditer(r"\S+", text)]
        self._starts = [a for a, _ in self.tokens]
        self._stem_at: dict[str, list[int]] = {}

    def _where(self, stem: str) -> list[int]:
        got = self._stem_at.get(stem)
        if got is None:
            got = []  # the words holding an occurrence (a stem has no space: inside one token)
            i = self.text.find(stem)
            while i >= 0:
                k = bisect_right(self._starts, i) - 1
                if not got or got[-1] != k:
                    got.append(k)
                i = self.text.find(stem, i + 1)
            self._stem_at[stem] = got
        return got

    def around(self, stems: tuple[str, ...], w: int) -> tuple[list[str], list[tuple[int, int]]]:
        n = len(self.tokens)
        anchors = {i for s in stems for i in self._where(s)} if stems else set(range(n))
        starts = sorted({s for i in anchors for s in range(max(0, i - w + 1), min(i, n - w) + 1)})
        spans = [(self.tokens[s][0], self.tokens[s + w - 1][1]) for s in starts]
        if not spans and self.tokens and anchors:
            spans = [(self.tokens[0][0], self.tokens[-1][1])]
        return [self.text[a:b] for a, b in spans], spans


class FuzzyLayer:
    name = "fuzzy"

    def __init__(self, rules: tuple[InjectionRule, ...]) -> None:
        self._phrases = tuple(
            _Phrase(r, p.lower(), _stems(p.lower()), len(p.split()))
            for r in rules
            if r.kind == "phrase"
            for p in r.phrases
        )

    def __len__(self) -> int:
        return len(self._phrases)

    def scan(self, view: View, surface: str = "user") -> list[LayerHit]:
        texts = [view.folded.text] if view.leet == view.folded.text else [view.folded.text, view.leet]
        wins = [_Windows(t) for t in texts]
        best: dict[str, LayerHit] = {}
        for ph in self._phrases:
            rule = ph.rule
            if surface not in rule.surfaces:
                continue
            if ph.stems and not any(s in t for t in texts for s in ph.stems):
                continue
            cutoff = rule.cutoff * 100
            for win in wins:
                for w in range(max(1, ph.words - 1), ph.words + MAX_EXTRA_WORDS + 1):
                    strings, spans = win.around(ph.stems, w)
                    if rule.quoted_mentions != "block" and spans:
                        kept = [i for i, (a, b) in enumerate(spans) if not touches_mention(win.text, a, b, ph.words)]
                        strings, spans = [strings[i] for i in kept], [spans[i] for i in kept]
                    if not strings:
                        continue
                    found = process.extractOne(ph.text, strings, scorer=fuzz.ratio, score_cutoff=cutoff)
                    if found is None:
                        continue
                    score = found[1] / 100
                    prev = best.get(rule.id)
                    if prev is None or score > prev.score:
                        best[rule.id] = LayerHit(rule, score, self.name, spans[found[2]], ph.text[:80])
        return list(best.values())
