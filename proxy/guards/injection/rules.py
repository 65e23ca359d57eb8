"""The signature database (``rules/injection/*.yaml``): typed, validated at load time.

A rule is one of four kinds: ``regex`` (compiled patterns, optional keyword
pre-filter), ``phrase`` (fuzzy matching with rapidfuzz over sliding windows),
``exemplar`` (semantic similarity with the shared MiniLM model) or ``classifier`` (a
learned head whose weights file, under the rules directory, the rule names in ``model``;
see ``heads``). Patterns and phrases
are written against the folded text (see ``normalize.fold``: lower-case, homoglyphs
folded, separators collapsed). ``false_positives`` lists known benign texts; for
exemplar rules they also act as negative anchors (a text closer to one of them than to
the rule's exemplars is not a hit).

Errors name the file, the rule id and the field (``RuleLoadError``). Regex and phrase
rules check their own ``examples`` at load time; exemplar rules (which need the model)
are checked by ``selftest.test_rules`` and the test suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from proxy.guards.injection.normalize import fold, views
from proxy.rules.loader import RuleLoadError, Strict, read_yaml, rule_files, validate

Kind = Literal["regex", "phrase", "exemplar", "classifier"]
RuleSurface = Literal["user", "tool", "tool_args", "prompt", "system", "assistant", "embedding_input"]
DEFAULT_SURFACES: list[RuleSurface] = ["user", "tool", "tool_args", "prompt", "embedding_input"]
DEFAULT_THRESHOLD: dict[str, float] = {"regex": 1.0, "phrase": 0.88, "exemplar": 0.80, "classifier": 0.5}


class Examples(Strict):
    match: list[str] = Field(default_factory=list)
    no_match: list[str] = Field(default_factory=list)


def _compiling(patterns: list[str], what: str) -> list[str]:
    """``patterns``, once each compiles; else a ValueError naming the first that does not."""
    for i, pat in enumerate(patterns):
        try:
            re.compile(pat)
        except re.error as exc:
            raise ValueError(f"{what} {i} does not compile: {exc}") from None
    return patterns


class FollowedBy(Strict):
    """A regex rule's match counts only when one of ``patterns`` matches starting within
    ``within`` characters after its end (in the same text; the follower may run past the
    window): "an AI agent addressed, then a hostile command". Each pattern's next match is
    remembered, so a text full of addressees is not searched again after each of them."""

    patterns: list[str] = Field(min_length=1)
    within: int = Field(default=250, ge=1, le=2000)

    @field_validator("patterns")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        return _compiling(value, "followed_by pattern")


class InjectionRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    status: Literal["experimental", "test", "stable"] = "experimental"
    severity: Literal["low", "medium", "high", "critical"] = "high"
    action: Literal["block", "refuse", "flag", "monitor"] = "block"
    kind: Kind
    family: str = ""
    description: str = ""
    patterns: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)  # regex pre-filter: substrings of the folded text
    # regex: a match is dropped when one of these matches the sentence it is in (exceptions,
    # such as a how-to condition: "si usas Linux, omite las instrucciones anteriores")
    unless: list[str] = Field(default_factory=list)
    # regex, phrase: "skip" drops a match quoted as a short example in a sentence about
    # attacks ('why do "ignore previous instructions" attacks work?'); "skip-examples" also
    # one inside an example an article reports ('an e-mail says "AI assistant, …"'): mentions.py
    quoted_mentions: Literal["block", "skip", "skip-examples"] = "block"
    followed_by: FollowedBy | None = None  # regex: a match counts only when one of these follows it
    phrases: list[str] = Field(default_factory=list)
    exemplars: list[str] = Field(default_factory=list)
    model: str = ""  # classifier: weights file, relative to the rules directory
    # classifier heads: "windows" reads 1,000-character windows of the text; "segments" reads
    # each segment of it (segments.py: runs of lines of at most 300 characters), the way an
    # instruction planted in a document is one line among ordinary ones
    reads: Literal["windows", "segments"] = "windows"
    threshold: float | None = Field(default=None, gt=0, le=1)
    surfaces: list[RuleSurface] = Field(default_factory=lambda: list(DEFAULT_SURFACES), min_length=1)
    references: list[str] = Field(default_factory=list)
    false_positives: list[str] = Field(default_factory=list)
    message: str = "The request was blocked: it looks like a prompt injection or jailbreak attempt."
    examples: Examples = Field(default_factory=Examples)

    @field_validator("patterns", "unless")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        return _compiling(value, "pattern")

    @model_validator(mode="after")
    def _kind_has_its_field(self) -> InjectionRule:
        need = {"regex": "patterns", "phrase": "phrases", "exemplar": "exemplars", "classifier": "model"}[self.kind]
        if not getattr(self, need):
            raise ValueError(f"a {self.kind} rule needs {need!r}")
        for other in {"patterns", "phrases", "exemplars", "model"} - {need}:
            if getattr(self, other):
                raise ValueError(f"a {self.kind} rule must not have {other!r}")
        if self.keywords and self.kind != "regex":
            raise ValueError("keywords are a pre-filter for regex rules only")
        if "" in self.keywords:
            raise ValueError("an empty keyword would let every text through the pre-filter: remove it")
        if self.unless and self.kind != "regex":
            raise ValueError("unless holds exceptions for regex rules only")
        if self.followed_by is not None and self.kind != "regex":
            raise ValueError("followed_by applies to regex rules only")
        if self.reads != "windows" and self.kind != "classifier":
            raise ValueError("reads applies to classifier rules only")
        if self.quoted_mentions != "block" and self.kind not in ("regex", "phrase"):
            raise ValueError("quoted_mentions applies to regex and phrase rules only")
        return self

    @property
    def cutoff(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.kind]


class InjectionFile(Strict):
    """One file of ``rules/injection/``."""

    schema_version: Literal[1]
    rules: list[InjectionRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: InjectionRule
    file: Path


def _own_layer(rule: InjectionRule) -> Callable[[str], bool]:
    """Does ``rule`` alone (regex or phrase) fire on a text? Used for load-time example checks;
    the layer is built once per rule, not once per example."""
    from proxy.guards.injection.fuzzy_layer import FuzzyLayer
    from proxy.guards.injection.regex_layer import RegexLayer

    layer = RegexLayer((rule,)) if rule.kind == "regex" else FuzzyLayer((rule,))
    surface = rule.surfaces[0]  # as the selftest: a rule for tool results only is tried as one
    return lambda text: any(layer.scan(v, surface) for v in views(text))


def check_model(rule: InjectionRule, path: Path) -> None:
    """A classifier rule's weights file exists and reads (errors name the file and rule)."""
    from proxy.guards.injection.heads import load_head

    try:
        load_head(path.parent, rule.model)
    except ValueError as exc:
        raise RuleLoadError(path, str(exc), rule_id=rule.id, field="model") from None


def check_literals(rule: InjectionRule, path: Path) -> None:
    """Patterns read the folded text: a pattern whose leading literal folding changes (a
    typographic apostrophe becomes "'", "İ" becomes "i") can never match there, and the
    layer, which tries a pattern only where its literal occurs, would never try it."""
    from proxy.guards.injection.regex_layer import literal_prefixes

    for i, pattern in enumerate(rule.patterns):
        for lit in literal_prefixes(pattern):
            folded = fold(lit).text
            if folded != lit:
                raise RuleLoadError(
                    path,
                    f"{lit!r} can never occur in the folded text (it folds to {folded!r}): write the folded form",
                    rule_id=rule.id,
                    field=f"patterns.{i}",
                )


def check_examples(rule: InjectionRule, path: Path) -> None:
    if rule.kind in ("exemplar", "classifier"):  # need the model / other layers: selftest
        return
    hits = _own_layer(rule)
    for i, text in enumerate(rule.examples.match):
        if not hits(text):
            raise RuleLoadError(
                path, f"example {text[:60]!r} should match but does not", rule_id=rule.id, field=f"examples.match.{i}"
            )
    for i, text in enumerate(rule.examples.no_match):
        if hits(text):
            raise RuleLoadError(
                path,
                f"example {text[:60]!r} should not match but does",
                rule_id=rule.id,
                field=f"examples.no_match.{i}",
            )


def read_rule_file(path: Path) -> InjectionFile:
    """Like ``loader.load_file`` but with libyaml's C parser when present (the exemplar
    files are large: ~1.2 s in pure Python, ~30 ms in C); errors fall back to the shared
    reader so they are reported the same way."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return validate(InjectionFile, read_yaml(path), path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = read_yaml(path)  # raises RuleLoadError with file, line and column
    return validate(InjectionFile, data, path)


def load_rules(directory: Path, *, check: bool = True) -> tuple[LoadedRule, ...]:
    """Every rule under ``directory`` (``*.yaml``), ids unique across files."""
    if not directory.is_dir():
        raise RuleLoadError(directory, "injection rules directory does not exist")
    seen: dict[str, Path] = {}
    out: list[LoadedRule] = []
    for path in rule_files(directory):
        for rule in read_rule_file(path).rules:
            if rule.id in seen:
                raise RuleLoadError(path, f"duplicate id (also in {seen[rule.id].name})", rule_id=rule.id, field="id")
            seen[rule.id] = path
            if rule.kind == "classifier":
                check_model(rule, path)
            check_literals(rule, path)
            if check:
                check_examples(rule, path)
            out.append(LoadedRule(rule, path))
    check_fusion_inputs(out)
    return tuple(out)


def check_fusion_inputs(loaded: list[LoadedRule]) -> None:
    """Every fusion input that names a rule names a loaded word or char head that reads
    windows: a missing or misspelt one (or one that reads segments, whose score the fusion
    never sees) would silently read as "no score" and shift the fusion's calibration."""
    from proxy.guards.injection.heads import FUSION, HEADS, load_head

    read = {lr.rule.id: (lr, load_head(lr.file.parent, lr.rule.model)) for lr in loaded if lr.rule.kind == "classifier"}
    heads = {rule_id for rule_id, (lr, head) in read.items() if head.format in HEADS and lr.rule.reads == "windows"}
    for lr, head in read.values():
        if head.format != FUSION:
            continue
        if lr.rule.reads != "windows":
            msg = "a fusion reads other heads' scores, not segments"
            raise RuleLoadError(lr.file, msg, rule_id=lr.rule.id, field="reads")
        for i in head.inputs:
            if i.rule and i.rule not in heads:
                raise RuleLoadError(
                    lr.file,
                    f"fusion input names rule {i.rule!r}, which is not a loaded word or char head",
                    rule_id=lr.rule.id,
                    field="model",
                )
