"""Layer 1: compiled regular expressions, behind a keyword pre-filter.

Patterns run against the folded (case-folded) text and, when it differs, the
leetspeak-folded text.
A rule with ``keywords`` runs only if one of them occurs in the text (a plain substring
test, much cheaper than the regexes); rules without keywords always run. Each pattern
also gets an automatic pre-test: the literals its first group starts with
(``\\b(ignore|disregard)…`` → "ignore", "disregard"), since Python's ``re`` tries every
alternative at every position and is slow on such patterns.
"""

from __future__ import annotations

import re
import re._constants as _c  # the parser ``re`` compiles with (3.11+): to find literal prefixes
import re._parser as _p
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from proxy.guards.injection.fuse import LayerHit
from proxy.guards.injection.normalize import View
from proxy.guards.injection.rules import InjectionRule


def _leading_literal(items: list[tuple[Any, Any]]) -> str:
    out = []
    for op, av in items:
        if op == _c.AT:
            continue
        if op != _c.LITERAL:
            break
        out.append(chr(av))
    return "".join(out).lower()


def _zero_width(op: Any, av: Any) -> bool:
    """An element that matches no characters: an anchor, an assertion, or a group of them."""
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
        return True
    if op == _c.SUBPATTERN:
        return all(_zero_width(*i) for i in av[-1])
    if op == _c.BRANCH:
        return all(all(_zero_width(*i) for i in b) for b in av[1])
    return False


def _prefixes(items: list[tuple[Any, Any]]) -> tuple[str, ...] | None:
    """The literals a match of ``items`` must start with (None: no usable literal)."""
    items = list(items)
    while items and _zero_width(*items[0]):  # \\b, lookbehinds and lookaheads come first
        items.pop(0)
    if not items:
        return None
    op, av = items[0]
    if op == _c.LITERAL:
        lit = _leading_literal(items)
        return (lit,) if len(lit) >= 2 else None
    if op == _c.SUBPATTERN:
        inner = list(av[-1])
        if len(inner) == 1 and inner[0][0] == _c.BRANCH:
            return _branches(inner[0][1][1])
        return _prefixes(inner)
    if op == _c.BRANCH:
        return _branches(av[1])
    return None


def _branches(branches: list[Any]) -> tuple[str, ...] | None:
    out: list[str] = []
    for b in branches:
        got = _prefixes(list(b))
        if got is None:
            return None
        out.extend(got)
    return tuple(dict.fromkeys(out))


def literal_prefixes(pattern: str) -> tuple[str, ...]:
    """Literals one of which must occur for ``pattern`` to match (empty: no cheap test).

    Follows the pattern's first element past anchors and assertions, into groups and into
    each alternative (``\\b(ignore|disregard)…``, ``(?<!not )(a|b (c|d))…``, ``x…|y…``):
    every alternative must start with a literal of at least two characters.
    """
    try:
        items = list(_p.parse(pattern, re.I))
    except re.error:
        return ()
    return _prefixes(items) or ()


_ESCAPE = re.compile(r"\\(.)", re.S)
_OCTAL = re.compile(r"\\[0-7]{3}")


def _flags(pattern: str) -> int:
    """The scanned texts are case-folded: a pattern with no capital letter needs no ``re.I``,
    which makes Python's matcher faster (1.35-1.9x on this layer). One with a capital, or
    with an escape that can spell a character (``\\x49``, ``\\u0130``, ``\\N{...}``, ``\\111``), keeps it."""
    if any(e in "xuUN" for e in _ESCAPE.findall(pattern)) or _OCTAL.search(pattern):
        return re.S | re.I
    bare = _ESCAPE.sub("", pattern)  # \S, \W and \\ are not letters
    return re.S | (re.I if any(ch != ch.lower() for ch in bare) else 0)


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    needs: tuple[str, ...]  # cheap pre-test: one of these substrings must occur

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.needs and not any(n in text for n in self.needs):
            return iter(())
        return self.regex.finditer(text)


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: InjectionRule
    patterns: tuple[_Pattern, ...]
    keywords: tuple[str, ...]
    unless: tuple[re.Pattern[str], ...] = ()

    def first(self, texts: list[str]) -> re.Match[str] | None:
        """The first match in ``texts`` that no ``unless`` pattern vetoes (in its sentence)."""
        for t in texts:
            for p in self.patterns:
                for m in p.finditer(t):
                    if not self.unless or not _vetoed(self.unless, t, m):
                        return m
        return None


_BOUNDS = ".!?\n"


def _vetoed(unless: tuple[re.Pattern[str], ...], text: str, m: re.Match[str]) -> bool:
    start = max(text.rfind(ch, 0, m.start()) for ch in _BOUNDS) + 1
    ends = [i for i in (text.find(ch, m.end()) for ch in _BOUNDS) if i >= 0]
    end = min(ends) if ends else len(text)
    return any(u.search(text, start, end) for u in unless)


class RegexLayer:
    name = "regex"

    def __init__(self, rules: tuple[InjectionRule, ...]) -> None:
        self._rules = tuple(
            _Compiled(
                r,
                tuple(_Pattern(re.compile(p, _flags(p)), literal_prefixes(p)) for p in r.patterns),
                tuple(k.lower() for k in r.keywords),
                tuple(re.compile(u, _flags(u)) for u in r.unless),
            )
            for r in rules
            if r.kind == "regex"
        )

    def __len__(self) -> int:
        return len(self._rules)

    def scan(self, view: View, surface: str = "user") -> list[LayerHit]:
        texts = [view.folded.text] if view.leet == view.folded.text else [view.folded.text, view.leet]
        hits: list[LayerHit] = []
        for c in self._rules:
            if surface not in c.rule.surfaces:
                continue
            if c.keywords and not any(k in t for t in texts for k in c.keywords):
                continue
            found = c.first(texts)
            if found is not None:
                hits.append(LayerHit(c.rule, 1.0, self.name, found.span(), found.group()[:80]))
        return hits
