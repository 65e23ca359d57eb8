"""Layer 1: compiled regular expressions, behind a keyword pre-filter.

Patterns run against the folded (case-folded) text and, when it differs, the
leetspeak-folded text.
A rule with ``keywords`` runs only if one of them occurs in the text; rules without
keywords always run. Each pattern also gets its leading literals, found automatically
(``\\b(ignore|disregard)…`` → "ignore", "disregard"): a match can only start where one of
them occurs, and the pattern is tried only there, since Python's ``re`` tries every
look-behind and alternative at every position and is slow on such patterns. One
Aho-Corasick pass over each text finds every keyword and every literal.
"""

from __future__ import annotations

import itertools
import re
import re._constants as _c  # the parser ``re`` compiles with (3.11+): to find literal prefixes
import re._parser as _p
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ahocorasick

from proxy.guards.injection.fuse import LayerHit
from proxy.guards.injection.mentions import is_mention, sentence
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


def _mentions_lines(items: Any, multiline: bool) -> bool:
    for op, av in items:
        if op == _c.LITERAL and av == 10:  # a bare \\n
            return True
        if op == _c.IN and (_c.LITERAL, 10) in av and (_c.NEGATE, None) not in av:  # [:\\n], not [^.\\n]
            return True
        if op == _c.AT and av == _c.AT_BEGINNING and multiline:  # ``(?m)^``; a plain ``^`` is the text's start
            return True
        if op == _c.SUBPATTERN and _mentions_lines(av[-1], multiline):
            return True
        if op == _c.BRANCH and any(_mentions_lines(b, multiline) for b in av[1]):
            return True
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) and _mentions_lines(av[2], multiline):
            return True
        if op in (_c.ASSERT, _c.ASSERT_NOT) and _mentions_lines(av[1], multiline):
            return True
    return False


def line_anchored(pattern: str) -> bool:
    """Does ``pattern`` look for a line break (``(^|\\n)``, a bare ``\\n``, ``[:\\n]``, ``(?m)^``)?
    It then reads the folded text with its line breaks back (``Folded.lined``): folding turns
    every line break into a space, where such a pattern could only match at the very start."""
    try:
        parsed = _p.parse(pattern, re.I)
        return _mentions_lines(parsed, bool(parsed.state.flags & re.M))
    except re.error:
        return False


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


# more than one candidate start per this many characters: one ordinary scan is cheaper
# (a ``match`` call from Python costs about as much as ``re`` trying ~10 positions)
ANCHORED_SPACING = 10


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    needs: tuple[str, ...]  # a match starts where one of these literals occurs
    key: int = 0  # its index among the layer's patterns
    lines: bool = False  # reads the text with its line breaks (``line_anchored``)

    def finditer(self, text: str, starts: list[int] | None) -> Iterator[re.Match[str]]:
        """``regex.finditer(text)``, tried only where a match can start.

        A match starts at an occurrence of one of ``needs`` (``starts``: where they occur in
        ``text``, None: nowhere), so the pattern is tried there only (``match`` at that
        position; lookbehinds and ``\\b`` still see what comes before) instead of at every
        position: ``re`` runs a pattern's lookbehinds and alternatives at each position,
        which made this layer take 2 s of a 100 KB document. The same matches in the same
        order, not overlapping (a start inside the previous match is skipped, as
        ``finditer`` resumes after it)."""
        if not self.needs:
            return self.regex.finditer(text)
        if not starts:
            return iter(())
        unique = sorted(set(starts))  # two literals can start at one position ("mostra", "mostra-me")
        if len(unique) * ANCHORED_SPACING > len(text):
            return self.regex.finditer(text)
        return self._anchored(text, unique)

    def _anchored(self, text: str, starts: list[int]) -> Iterator[re.Match[str]]:
        resume = 0
        for i in starts:
            if i < resume:
                continue
            m = self.regex.match(text, i)
            if m is not None:
                yield m
                resume = max(m.end(), i + 1)


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: InjectionRule
    patterns: tuple[_Pattern, ...]
    keywords: tuple[str, ...]
    unless: tuple[re.Pattern[str], ...] = ()
    after: tuple[re.Pattern[str], ...] = ()  # followed_by
    within: int = 0

    def first(self, texts: list[str], starts: list[dict[int, list[int]]], lined: list[str]) -> re.Match[str] | None:
        """The first match in ``texts`` (``lined``: the same with line breaks, for the patterns
        that look for them) that no ``unless`` pattern vetoes (in its sentence), that is not a
        quoted mention where the rule skips those (``mentions.py``), and that one of the
        ``followed_by`` patterns follows where the rule has them."""
        examples = self.rule.quoted_mentions == "skip-examples"
        for t, at, tl in zip(texts, starts, lined, strict=True):
            passed = (
                m
                for p in self.patterns
                for m in p.finditer(tl if p.lines else t, at.get(p.key))
                if not (self.unless and _vetoed(self.unless, t, m))
                and not (self.rule.quoted_mentions != "block" and is_mention(t, *m.span(), examples=examples))
            )
            if not self.after:
                found = next(passed, None)
                if found is not None:
                    return found
                continue
            # followed_by: the candidates in the order of their ends, so that each follower
            # pattern is searched forward through the text once
            follow = _Followers(self.after, t)
            for m in sorted(passed, key=lambda m: m.end()):
                if follow.within(m.end(), self.within):
                    return m
        return None


class _Followers:
    """The next match of each ``followed_by`` pattern at or after a position, remembered.
    Asked with positions that do not decrease (``_Compiled.first`` sorts its candidates), each
    pattern's search only moves forward, so the text is searched once per pattern."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...], text: str) -> None:
        self.patterns, self.text = patterns, text
        self.found: list[tuple[int, int | None]] = [(-1, None)] * len(patterns)  # (searched from, next start)

    def within(self, pos: int, reach: int) -> bool:
        """Whether one of the patterns matches starting in ``[pos, pos + reach]``."""
        for i, p in enumerate(self.patterns):
            since, nxt = self.found[i]
            if since < 0 or pos < since or (nxt is not None and nxt < pos):
                m = p.search(self.text, pos)
                since, nxt = pos, (m.start() if m else None)
                self.found[i] = (since, nxt)
            if nxt is not None and nxt <= pos + reach:
                return True
        return False


def _vetoed(unless: tuple[re.Pattern[str], ...], text: str, m: re.Match[str]) -> bool:
    start, end = sentence(text, m.start(), m.end())
    return any(u.search(text, start, end) for u in unless)


class _Index:
    """One pass over a text (Aho-Corasick) for every rule's keywords and every pattern's
    leading literals: which rules' keywords occur, and where each pattern can start."""

    def __init__(self, rules: tuple[_Compiled, ...]) -> None:
        self._patterns: dict[str, list[int]] = {}  # literal -> keys of the patterns starting with it
        self._rules: dict[str, list[int]] = {}  # keyword -> indices of the rules it belongs to
        for ri, c in enumerate(rules):
            for p in c.patterns:
                for n in p.needs:
                    self._patterns.setdefault(n, []).append(p.key)
            for k in c.keywords:
                self._rules.setdefault(k, []).append(ri)
        self._automaton: Any = None
        if self._patterns or self._rules:
            self._automaton = ahocorasick.Automaton()
            for word in self._patterns.keys() | self._rules.keys():
                self._automaton.add_word(word, word)
            self._automaton.make_automaton()

    def read(self, text: str, keyed: set[int]) -> dict[int, list[int]]:
        """{pattern key: where it can start (unsorted)}; adds to ``keyed`` the rules one of whose
        keywords occurs."""
        at: dict[str, list[int]] = {}
        if self._automaton is not None:
            for end, word in self._automaton.iter(text):
                at.setdefault(word, []).append(end - len(word) + 1)
        starts: dict[int, list[int]] = {}
        for word, where in at.items():
            keyed.update(self._rules.get(word, ()))
            for key in self._patterns.get(word, ()):
                starts.setdefault(key, []).extend(where)
        return starts


def _pattern(source: str, key: int) -> _Pattern:
    lines = line_anchored(source)
    # a literal may straddle a line break in the lined text: no anchored starts for these
    return _Pattern(re.compile(source, _flags(source)), () if lines else literal_prefixes(source), key, lines)


class RegexLayer:
    name = "regex"

    def __init__(self, rules: tuple[InjectionRule, ...]) -> None:
        key = itertools.count()
        self._rules = tuple(
            _Compiled(
                r,
                tuple(_pattern(p, next(key)) for p in r.patterns),
                tuple(k.lower() for k in r.keywords),
                tuple(re.compile(u, _flags(u)) for u in r.unless),
                tuple(re.compile(a, _flags(a)) for a in r.followed_by.patterns) if r.followed_by else (),
                r.followed_by.within if r.followed_by else 0,
            )
            for r in rules
            if r.kind == "regex"
        )
        self._index = _Index(self._rules)
        self._lines = any(p.lines for c in self._rules for p in c.patterns)

    def __len__(self) -> int:
        return len(self._rules)

    def scan(self, view: View, surface: str = "user") -> list[LayerHit]:
        texts = [view.folded.text] if view.leet == view.folded.text else [view.folded.text, view.leet]
        keyed: set[int] = set()  # rules one of whose keywords occurs in one of the texts
        starts = [self._index.read(t, keyed) for t in texts]
        lined = [view.folded.lined(t) for t in texts] if self._lines else texts
        hits: list[LayerHit] = []
        for ri, c in enumerate(self._rules):
            if surface not in c.rule.surfaces:
                continue
            if c.keywords and ri not in keyed:
                continue
            m = c.first(texts, starts, lined)
            if m is not None:
                hits.append(LayerHit(c.rule, 1.0, self.name, m.span(), m.group()[:80]))
        return hits
