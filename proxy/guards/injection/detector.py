"""The detector: normalise, run the layers cheapest first, return findings for one text.

Synchronous and CPU-bound: the guard calls it in ``services.cpu``; the eval command,
the benchmark and the rule self-test call it directly.

Order: the folded text and its decodings go through the regex layer, the fuzzy layer
and the learned heads; the semantic layer runs last, on the folded text (and on
decodings), and is skipped when a cheap layer already found a blocking hit
(``short_circuit``) or, in ``gated`` mode, when the text contains none of the cue words
attacks are made of, or the learned heads (word and char) give it less than ``gate``. In
``gated`` mode it then embeds only the windows the heads gave at least ``gate`` (at most
``window_budget``, most suspicious first), so a long document with one odd paragraph pays
for one window. Fusion rules then combine the heads' and the semantic scores of each view.
On ``segment_surfaces`` (tool results by default) the learned layers and the fusion then
read each segment of a long text on its own (``segments.py``), unless a blocking hit
already settled it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from proxy.guards.injection.classifier_layer import ClassifierLayer, Span
from proxy.guards.injection.fuse import Finding, LayerHit, best_per_rule, risk
from proxy.guards.injection.fuzzy_layer import FuzzyLayer
from proxy.guards.injection.normalize import View, views
from proxy.guards.injection.regex_layer import RegexLayer
from proxy.guards.injection.rules import InjectionRule, LoadedRule, load_rules
from proxy.guards.injection.segments import SEGMENT_MIN, SEGMENT_SURFACES, SEGMENT_THRESHOLD, segment_spans
from proxy.guards.injection.semantic_layer import SemanticLayer
from proxy.verdicts import Hit

if TYPE_CHECKING:
    from proxy.pipeline.guard import BuildContext

SemanticMode = Literal["always", "gated", "off"]
LEET_MIN_CHANGES = 5

# Words (stems) that almost every injection or jailbreak carries at least one of; a text
# with none of them skips the (expensive) semantic layer in ``gated`` mode.
CUES = re.compile(
    r"ignor|disregard|forget|instruct|prompt|rule|polic|guideline|restrict|filter|censor|"
    r"pretend|act as|acting|role|persona|character|simulat|imagin|hypothetic|game|story|"
    r"jailbr|dan\b|developer|mode|unlock|unfilter|uncensor|unrestrict|without limit|no limit|"
    r"ethic|moral|openai|chatgpt|\bai\b|assistant|language model|system|admin|sudo|override|bypass|"
    r"secret|password|reveal|confiden|previous|above|earlier|from now|respond|answer|reply|output|"
    r"print|repeat|say|tell|write|translat|decode|encod|base64|summar|email|document|"
    r"must|never|always|anything|everything|allowed|permission|now on|stay in|you are|you will|you're"
)


class Findings(list[Finding]):
    """The findings for one text, best first; ``risk`` and ``hits`` summarise them.
    ``windows``: how many windows the semantic layer read for it (0: it did not run),
    what a scan's cost mostly depends on."""

    windows: int = 0

    @property
    def risk(self) -> float:
        return max((f.risk for f in self), default=0.0)

    @property
    def hits(self) -> tuple[Hit, ...]:
        return tuple(f.hit("") for f in self)


def _model_text(v: View) -> str:
    """What the learned layers read: the folded text, or its leet folding when a text is
    written in leetspeak (it reads better folded); both have the same length."""
    t = v.folded.text
    if v.leet != t and sum(a != b for a, b in zip(t, v.leet, strict=True)) > LEET_MIN_CHANGES:
        return v.leet
    return t


def _cue_count(text: str) -> int:
    return len(CUES.findall(text))


def _cue_rank(text: str) -> Callable[[Span], float]:
    """A semantic window's rank: how many cue words it holds."""
    return lambda span: float(_cue_count(text[span[0] : span[1]]))


def _window_rank(wins: list[tuple[Span, float]]) -> Callable[[Span], float]:
    """A semantic window's rank: the head probability of the head window it overlaps most."""

    def rank(span: Span) -> float:
        a, b = span
        overlap, p = max(((min(b, y) - max(a, x), p) for (x, y), p in wins), default=(0, 0.0))
        return p if overlap > 0 else 0.0

    return rank


@dataclass
class Detector:
    rules: tuple[InjectionRule, ...]
    embedder: Any = None
    semantic_mode: SemanticMode = "gated"
    short_circuit: bool = True
    vectors_dir: Path | None = None  # shipped exemplar vectors (rules/injection/.vectors)
    window_budget: int | None = 4  # semantic windows per text (None: all); the cheap layers always see all
    rules_dir: Path | None = None  # where classifier rules' weights files are
    gate: float = 0.5  # gated mode: semantic only when a learned head gives at least this
    window_penalty: float = 0.0  # learned heads on n > 1 windows: logit - this x ln(n) (ClassifierLayer)
    segment_surfaces: frozenset[str] = frozenset(SEGMENT_SURFACES)  # fusion per segment too (segments.py)
    segment_threshold: float = SEGMENT_THRESHOLD
    regex: RegexLayer = field(init=False)
    classifier: ClassifierLayer = field(init=False)
    fuzzy: FuzzyLayer = field(init=False)
    semantic: SemanticLayer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.regex = RegexLayer(self.rules)
        self.fuzzy = FuzzyLayer(self.rules)
        self.classifier = ClassifierLayer(self.rules, self.rules_dir, self.window_penalty)
        if self.embedder is not None and self.semantic_mode != "off" and any(r.kind == "exemplar" for r in self.rules):
            self.semantic = SemanticLayer(self.rules, self.embedder, vectors_dir=self.vectors_dir)

    @classmethod
    def from_loaded(cls, loaded: tuple[LoadedRule, ...], embedder: Any = None, **kw: Any) -> Detector:
        if loaded:
            kw.setdefault("vectors_dir", loaded[0].file.parent / ".vectors")
            kw.setdefault("rules_dir", loaded[0].file.parent)
        return cls(tuple(lr.rule for lr in loaded), embedder, **kw)

    @classmethod
    def from_build_context(cls, bc: BuildContext, **kw: Any) -> Detector:
        """The detector over ``<rules_dir>/<options.dir or injection>`` with the shared embedder."""
        loaded = load_rules(bc.rules_dir / str(bc.options.get("dir", "injection")))
        embedder = bc.services.embedder() if bc.services is not None else None
        return cls.from_loaded(loaded, embedder, **kw)

    @staticmethod
    def _finding(v: View, h: LayerHit) -> Finding:
        span = v.folded.span(*h.span) if v.via == "" else v.at
        return Finding(h.rule, h.score, risk(h.score, h.rule.cutoff), h.layer, span, v.via, h.detail)

    def scan(self, text: str, surface: str = "user", *, near: bool = False) -> Findings:
        """Findings for one text, best per rule; only those that fired unless ``near``."""
        found: list[Finding] = []
        embedded = 0
        vs = views(text)
        per_view: list[tuple[list[LayerHit], list[tuple[Span, float]]]] = []
        texts = [_model_text(v) for v in vs]
        for v, t in zip(vs, texts, strict=True):
            heads, wins = self.classifier.scan_windows(t, surface)
            hits = self.regex.scan(v, surface) + self.fuzzy.scan(v, surface) + heads
            per_view.append((hits, wins))
            found.extend(self._finding(v, h) for h in hits)
        reads = self.classifier.reads_segments(surface)
        segs = self._plain_segments(text, vs[0]) if reads or surface in self.segment_surfaces else []
        if reads and not self._settled(found, near):
            for v, t in zip(vs, texts, strict=True):
                spans = [(fa, fb) for _, _, fa, fb in segs] if v.via == "" else self._lined_spans(v)
                found.extend(self._finding(v, h) for h in self.classifier.scan_segments(t, spans, surface))
        run_semantic = self.semantic is not None and not self._settled(found, near)
        for v, t, (hits, wins) in zip(vs, texts, per_view, strict=True):
            sem, n = self._semantic(t, hits, wins, surface, near) if run_semantic else (None, 0)
            if sem is not None:
                hits = hits + sem
                embedded += n
                found.extend(self._finding(v, h) for h in sem)
            found.extend(self._finding(v, h) for h in self.classifier.fuse(hits, sem is not None, surface))
        if surface in self.segment_surfaces and not self._settled(found, near):
            seg_found, n = self._segments(segs, texts[0], surface, run_semantic, embedded)
            found.extend(seg_found)
            embedded += n
        best = best_per_rule(found)
        out = Findings(best if near else [f for f in best if f.fired])
        out.windows = embedded
        return out

    @staticmethod
    def _plain_segments(text: str, v: View) -> list[tuple[int, int, int, int]]:
        """The segments of ``text`` (``segment_spans``) as (start, end) in it and in the folded
        text of its plain view ``v``, short ones left out; none when it is a single segment."""
        spans = segment_spans(text)
        if len(spans) < 2:
            return []
        origin = v.folded.origin
        mapped = ((a, b, bisect_left(origin, a), bisect_left(origin, b)) for a, b in spans)
        return [(a, b, fa, fb) for a, b, fa, fb in mapped if fb - fa >= SEGMENT_MIN]

    @staticmethod
    def _lined_spans(v: View) -> list[Span]:
        """A decoded view's segments, cut from its folded text with its line breaks back (a
        JSON string's escaped ones too; blank lines are not kept by folding, so only the
        300-character limit ends a run); none when it is a single segment."""
        spans = segment_spans(v.folded.lined())
        return [(a, b) for a, b in spans if b - a >= SEGMENT_MIN] if len(spans) > 1 else []

    def _settled(self, found: list[Finding], near: bool) -> bool:
        """A blocking hit makes the costlier layers moot (``short_circuit``), unless ``near``."""
        return self.short_circuit and not near and any(f.fired and f.rule.action == "block" for f in found)

    def _semantic(
        self, t: str, hits: list[LayerHit], wins: list[tuple[Span, float]], surface: str, near: bool,
        budget: int | None = None,
    ) -> tuple[list[LayerHit] | None, int]:  # fmt: skip
        """The semantic layer's hits on one model text and the windows it embedded; None
        when ``gated`` mode skips it (no cue word, or the heads below ``gate``)."""
        if self.semantic is None:
            return None, 0
        gate = self.classifier.gate_score(hits, surface)
        gated = self.semantic_mode == "gated" and not near
        if gated and (not CUES.search(t) or (gate is not None and gate < self.gate)):
            return None, 0
        budget = None if near else (self.window_budget if budget is None else budget)
        if gated and gate is not None:  # the windows the heads find suspicious, most first
            return self.semantic.scan_counted(t, surface, budget, _window_rank(wins), self.gate)
        return self.semantic.scan_counted(t, surface, budget, _cue_rank(t))

    def _segments(
        self, segs: list[tuple[int, int, int, int]], t: str, surface: str, run_semantic: bool, embedded: int
    ) -> tuple[list[Finding], int]:
        """The fusion on each segment (``segs``, from ``_plain_segments``) of a document's
        plain view (model text ``t``); a segment fires at ``segment_threshold`` (or the fusion rule's own
        threshold, if higher) and names the segment as its span. Segments without a cue word,
        shorter than ``SEGMENT_MIN`` folded characters or repeating an earlier one are
        skipped. The semantic layer reads the segments the heads find most suspicious, within
        what is left of ``window_budget`` after the whole text's ``embedded`` windows; it
        stays gated under ``near`` too (``score``), so an eval costs what production does."""
        if not segs or not self.classifier.fusions:
            return [], 0
        scored, seen = [], set()
        for a, b, fa, fb in segs:
            seg = t[fa:fb]
            if seg in seen or not CUES.search(seg):
                continue
            seen.add(seg)
            heads, wins = self.classifier.scan_windows(seg, surface)
            scored.append((max((h.score for h in heads), default=0.0), a, b, seg, heads, wins))
        left = len(scored) if self.window_budget is None else self.window_budget - embedded
        out: list[Finding] = []
        n_embedded = 0
        for _, a, b, seg, hits, wins in sorted(scored, key=lambda s: -s[0]):
            sem, n = self._semantic(seg, hits, wins, surface, False, 1) if run_semantic and left > 0 else (None, 0)
            if sem is not None:
                hits = hits + sem
                n_embedded += n
                left -= n
            for h in self.classifier.fuse(hits, sem is not None, surface):
                cut = max(h.rule.cutoff, self.segment_threshold)
                detail = f"segment {a}-{b}: {h.detail}"
                out.append(Finding(h.rule, h.score, risk(h.score, cut), h.layer, (a, b), "", detail))
        return out, n_embedded

    def score(self, text: str, surface: str = "user") -> float:
        """The text's risk on one scale (0.5 = a rule's threshold), every layer run."""
        return max((f.risk for f in self.scan(text, surface, near=True)), default=0.0)
