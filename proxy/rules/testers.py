"""Rule testers for the kinds this package owns (see ``proxy.rules.kinds``).

``test_denylist``: every rule's examples (also checked at load) and no phrase hit on
the benign corpus.
"""

from __future__ import annotations

from pathlib import Path

from proxy.guards.denylist import DenylistFile
from proxy.rules.kinds import Failure
from proxy.rules.loader import RuleLoadError, load_file


def test_denylist(rules_dir: Path, benign: list[str] | None) -> list[Failure]:
    path = rules_dir / "denylist.yaml"
    if not path.is_file():
        return []
    try:
        rules = load_file(DenylistFile, path).rules
    except RuleLoadError as exc:
        return [(exc.file, exc.rule_id or "-", exc.detail)]
    failures: list[Failure] = []
    for rule in rules:
        phrases = [p.lower() for p in rule.phrases]
        for n, text in enumerate(benign or [], start=1):
            low = text.lower()
            hit = next((p for p in phrases if p in low), None)
            if hit is not None:
                failures.append((str(path), rule.id, f"benign text {n} contains phrase {hit!r}: {text[:80]!r}"))
    return failures


test_denylist.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

__all__ = ["test_denylist"]
