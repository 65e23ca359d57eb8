"""Rule self-test: every rule's examples through the full detector, plus a benign corpus.

Used by ``guardrail-proxy rules test`` (through ``proxy/rules/kinds.py``) and by the
test suite. ``test_rules`` returns failures as (file, rule_id, message); an empty list
means every ``examples.match`` text fires its rule, no ``examples.no_match`` text fires
it, and no benign text fires any rule unless that rule lists the text under
``false_positives`` (benign texts are read as user turns, and as tool results for the
rules that read tool results and not user turns).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.guards.injection.detector import Detector
from proxy.guards.injection.rules import LoadedRule, load_rules
from proxy.rules.loader import RuleLoadError

Failure = tuple[str, str, str]


def _default_embedder() -> Any:
    from proxy.embedding import load_default

    return load_default()


def detector_for(loaded: tuple[LoadedRule, ...], embedder: Any = None) -> Detector:
    """The production detector with every layer run on every text (no short-circuit, no
    gate), so each rule is tested on its own examples."""
    if embedder is None and any(lr.rule.kind in ("exemplar", "classifier") for lr in loaded):
        embedder = _default_embedder()
    return Detector.from_loaded(loaded, embedder, short_circuit=False, semantic_mode="always")


def check_loaded(loaded: tuple[LoadedRule, ...], detector: Detector, benign: list[str] | None = None) -> list[Failure]:
    failures: list[Failure] = []
    for lr in loaded:
        rule, name = lr.rule, str(lr.file)
        surface = rule.surfaces[0]
        for text in rule.examples.match:
            ids = {f.rule.id for f in detector.scan(text, surface)}
            if rule.id not in ids:
                failures.append((name, rule.id, f"match example does not fire the rule: {text[:80]!r}"))
        for text in rule.examples.no_match:
            ids = {f.rule.id for f in detector.scan(text, surface)}
            if rule.id in ids:
                failures.append((name, rule.id, f"no_match example fires the rule: {text[:80]!r}"))
    by_id = {lr.rule.id: lr for lr in loaded}
    for text in benign or []:
        # as a user turn, and as a tool result for the rules that read tool results only
        found = list(detector.scan(text, "user"))
        if any("user" not in lr.rule.surfaces and "tool" in lr.rule.surfaces for lr in loaded):
            # near: every rule reports, even after another one blocked the text
            found += [f for f in detector.scan(text, "tool", near=True) if f.fired and "user" not in f.rule.surfaces]
        for f in found:
            lr = by_id[f.rule.id]
            if text.strip() in {t.strip() for t in lr.rule.false_positives}:
                continue
            failures.append((str(lr.file), f.rule.id, f"benign text fires the rule ({f.layer}): {text[:80]!r}"))
    return failures


def test_rules(rules_dir: Path, benign: list[str] | None = None) -> list[Failure]:
    """Run every rule's examples (and ``benign`` texts) through the full detector."""
    try:
        loaded = load_rules(rules_dir, check=False)
    except RuleLoadError as exc:
        return [(exc.file, exc.rule_id or "", exc.detail if exc.field is None else f"{exc.field}: {exc.detail}")]
    return check_loaded(loaded, detector_for(loaded), benign)


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
