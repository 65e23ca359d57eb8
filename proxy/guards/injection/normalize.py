# ruff: noqa: RUF001
"""Text normalisation before matching, and the decoded views of a text.

``fold`` turns a text into the form signatures are written against: Unicode NFKC,
case folding, zero-width and bidi controls removed, accents stripped, common
Cyrillic/Greek homoglyphs mapped to Latin, letters split by separators joined again
("i g n o r e", "i.g.n.o.r.e" → "ignore"), whitespace collapsed. Hangul syllables are
kept whole (accent stripping does not cut them down to their jamo), and conjoining jamo
(decomposed or compatibility-jamo input) are composed into syllables as NFKC of the
whole text would ("ㅁㅜㅅㅣ" → "무시"). ``leet`` additionally folds leetspeak inside
words that mix letters and digits ("1gn0r3" → "ignore").

Every folded character remembers the index of the original character it came from,
so a hit on the folded text can name a span of the original. ``views`` returns the
folded text plus the folded decodings of embedded base64, hex, binary (8-bit groups), URL-encoded and rot13
segments (recursively, to a small depth), which are scanned as well.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from proxy.guards.injection.decode import decodings

# Cyrillic, Greek and a few other letters that look like Latin ones (after casefold), and
# typographic quotes.
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i",
    "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "г": "r",
    "ѕ": "s", "т": "t", "ц": "u", "ѵ": "v", "ԝ": "w", "х": "x", "у": "y", "з": "3", "ь": "b",
    "п": "n", "л": "n", "и": "u", "ђ": "h", "ћ": "h", "є": "e", "ґ": "r",
    # Greek
    "α": "a", "β": "b", "ϲ": "c", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ζ": "z", "μ": "u",
    "ς": "s", "σ": "o", "θ": "o", "λ": "l", "π": "n",
    # Latin look-alikes and symbols NFKC leaves alone
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʀ": "r", "ʏ": "y", "ᴀ": "a",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ᴋ": "k", "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ø": "o", "ł": "l", "đ": "d", "ß": "ss",
    # typographic quotes (phones and word processors curl the apostrophe of "don't"): the ASCII ones
    "‘": "'", "’": "'", "‛": "'", "ʼ": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
}  # fmt: skip

LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
}

_SEPARATED = re.compile(r"(?<![^\W_])(?:[^\W_][\s._\-*·•|/\\,+~'`^]{1,2}){3,}[^\W_](?![^\W_])")
_SEP_CHARS = re.compile(r"[\s._\-*·•|/\\,+~'`^]")
_SPACE = re.compile(r"\s{2,}|[^\S ]")  # any whitespace but a lone space
# Letter-spaced text ("i g n o r e   a l l"): a stretch of single characters, one space
# apart within a word and wider gaps between words. Its 2-3 letter words are spaced too
# ("a l l", "o f"): the lone spaces inside its words go before the wide gaps collapse, or
# the short words would run into each other. Only stretches holding a run of 4+ single
# letters count, and nothing outside a stretch changes.
_STRETCH = re.compile(r"(?<!\S)\S(?: \S)*(?:\s{2,}\S(?: \S)*)*(?!\S)")
_LETTER_RUN = re.compile(r"(?<!\S)[^\W\d_](?: [^\W\d_]){3,}(?!\S)")
_LEET_WORD = re.compile(r"[a-z0-9@$!|]*(?:[a-z][a-z0-9@$!|]*[0-9@$!|]|[0-9@$!|][a-z0-9@$!|]*[a-z])[a-z0-9@$!|]*")
_LEET_CHARS = re.compile(r"[0-9@$!|]")


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded text and, for each of its characters, the index in the original.

    ``wide`` lists the original ranges ``(start, end)`` longer than one character that
    became a single folded character (decomposed Hangul jamo composed into a syllable),
    keyed by ``start``, the origin of that character.
    """

    text: str
    origin: tuple[int, ...]
    wide: tuple[tuple[int, int], ...] = ()
    breaks: tuple[int, ...] = ()  # the spaces of ``text`` that stand for a line break

    def lined(self, text: str | None = None) -> str:
        """``text`` (default: the folded text; or its leet folding, same length) with its line
        breaks back: for patterns anchored at the start of a line, ``(^|\\n)``."""
        text = self.text if text is None else text
        if not self.breaks:
            return text
        chars = list(text)
        for i in self.breaks:
            chars[i] = "\n"
        return "".join(chars)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span a folded span ``[start, end)`` came from."""
        if not self.origin:
            return (0, 0)
        start = min(max(start, 0), len(self.origin) - 1)
        end = min(max(end, start + 1), len(self.origin))
        last = self.origin[end - 1]
        stop = next((b for a, b in self.wide if a == last), last + 1) if self.wide else last + 1
        return (self.origin[start], stop)


@dataclass(frozen=True, slots=True)
class View:
    """One text to scan: the folded original (``via`` = "") or a folded decoding."""

    folded: Folded
    leet: str  # the same text with leetspeak folded (same length, same origins)
    via: str  # "" | "base64" | "hex" | "url" | "rot13" | "base64>url" ...
    at: tuple[int, int] | None  # where the decoded segment sits in the original (decodings only)


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or ch in "\u034f\u115f\u1160\u3164\uffa0"


# Hangul: precomposed syllables and the modern conjoining jamo they are composed of
# (Unicode §3.12, the same arithmetic NFC/NFKC use).
_S_BASE, _L_BASE, _V_BASE, _T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
_L_COUNT, _V_COUNT, _T_COUNT = 19, 21, 28
_S_COUNT = _L_COUNT * _V_COUNT * _T_COUNT
_JAMO = re.compile("[\u1100-\u1112][\u1161-\u1175]|[\uac00-\ud7a3][\u11a8-\u11c2]")


def _is_syllable(ch: str) -> bool:
    return 0 <= ord(ch) - _S_BASE < _S_COUNT


def _compose_hangul(chars: str, origin: list[int], wide: dict[int, int]) -> tuple[str, list[int]]:
    """Conjoining jamo composed into Hangul syllables (L+V, L+V+T, LV+T), as NFC does.

    A syllable keeps the origin of its first jamo; ``wide`` gets, for that origin, the
    end of the original range its jamo came from.
    """
    if not _JAMO.search(chars):
        return chars, origin
    out: list[str] = []
    out_origin: list[int] = []
    for ch, i in zip(chars, origin, strict=True):
        c = ord(ch)
        if out:
            prev = ord(out[-1])
            if 0 <= prev - _L_BASE < _L_COUNT and 0 <= c - _V_BASE < _V_COUNT:
                out[-1] = chr(_S_BASE + ((prev - _L_BASE) * _V_COUNT + c - _V_BASE) * _T_COUNT)
            elif 0 <= prev - _S_BASE < _S_COUNT and (prev - _S_BASE) % _T_COUNT == 0 and 0 < c - _T_BASE < _T_COUNT:
                out[-1] = chr(prev + c - _T_BASE)
            else:
                prev = -1
            if prev >= 0:
                first = out_origin[-1]
                wide[first] = max(wide.get(first, first + 1), i + 1)
                continue
        out.append(ch)
        out_origin.append(i)
    return "".join(out), out_origin


@functools.lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    """What one non-ASCII character folds to ("" for an invisible one)."""
    if _is_invisible(ch):
        return ""
    pieces = []
    for o in unicodedata.normalize("NFKC", ch).casefold():
        if _is_invisible(o) or unicodedata.category(o) == "Mn":
            continue
        o = CONFUSABLES.get(o, o)
        # the base letter, accents dropped; a Hangul syllable is a letter of its own
        # (its NFD is its jamo, the first of which is only the initial consonant)
        if not o.isascii() and not _is_syllable(o) and unicodedata.category(o).startswith("L"):
            base = unicodedata.normalize("NFD", o)[0]
            o = CONFUSABLES.get(base, base)
        pieces.append(o)
    return "".join(pieces)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _char_fold(text: str) -> tuple[list[str], list[int]]:
    if text.isascii():
        low = text.lower()
        return list(low), list(range(len(low)))
    chars: list[str] = []
    origin: list[int] = []
    last = 0
    for m in _NON_ASCII.finditer(text):  # ASCII runs in bulk, other characters one by one
        i = m.start()
        chars.extend(text[last:i].lower())
        origin.extend(range(last, i))
        out = _fold_char(m.group())
        chars.extend(out)
        origin.extend([i] * len(out))
        last = i + 1
    chars.extend(text[last:].lower())
    origin.extend(range(last, len(text)))
    return chars, origin


def _resub(
    chars: str, origin: list[int], pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]
) -> tuple[str, list[int]]:
    """``pattern.sub`` that keeps origins; a replacement keeps its match's first origin per char."""
    out: list[str] = []
    out_origin: list[int] = []
    last = 0
    for m in pattern.finditer(chars):
        out.append(chars[last : m.start()])
        out_origin.extend(origin[last : m.start()])
        new = repl(m)
        keep = [j for j in range(m.start(), m.end()) if not _SEP_CHARS.match(chars[j]) and not chars[j].isspace()]
        for k, _ in enumerate(new):
            out_origin.append(origin[keep[k]] if k < len(keep) else origin[m.start()])
        out.append(new)
        last = m.end()
    if last == 0:
        return chars, origin
    out.append(chars[last:])
    out_origin.extend(origin[last:])
    return "".join(out), out_origin


def _join_spaced(s: str, origin: list[int]) -> tuple[str, list[int]]:
    """The lone spaces inside the words of letter-spaced stretches, removed."""
    if not _LETTER_RUN.search(s):
        return s, origin
    drop: set[int] = set()
    for m in _STRETCH.finditer(s):
        if _LETTER_RUN.search(m.group()):
            drop.update(j for j in range(m.start() + 1, m.end() - 1) if s[j] == " " and s[j - 1] != " " != s[j + 1])
    if not drop:
        return s, origin
    keep = [j for j in range(len(s)) if j not in drop]
    return "".join(s[j] for j in keep), [origin[j] for j in keep]


def fold(text: str) -> Folded:
    """NFKC + casefold + invisible removal + homoglyphs + separator and whitespace collapsing."""
    chars, origin = _char_fold(text)
    wide: dict[int, int] = {}
    s, origin = _compose_hangul("".join(chars), origin, wide)
    s, origin = _join_spaced(s, origin)
    for _ in range(3):  # joining can bring separated letters (or jamo) next to each other again
        s, origin = _resub(s, origin, _SEPARATED, lambda m: _SEP_CHARS.sub("", m.group()))
        s, origin = _resub(s, origin, _SPACE, lambda m: " ")
        s, origin = _compose_hangul(s, origin, wide)
        if not _SEPARATED.search(s):
            break
    return Folded(s, tuple(origin), tuple(sorted(wide.items())), _breaks(text, s, origin))


LINE_BREAKS = "\n\r\v\f\x1c-\x1e\x85\u2028\u2029"  # what ``str.splitlines`` breaks at (a class body)
_LINE_BREAK = re.compile(f"[{LINE_BREAKS}]")


def _breaks(text: str, folded: str, origin: list[int]) -> tuple[int, ...]:
    """The folded spaces whose whitespace run held a line break (a run is folded to one space
    whose origin is the run's first character)."""
    out: list[int] = []
    for m in _LINE_BREAK.finditer(text):
        k = bisect_right(origin, m.start()) - 1
        if k >= 0 and folded[k] == " " and (not out or out[-1] != k):
            out.append(k)
    return tuple(out)


def leet(text: str) -> str:
    """Leetspeak folded inside words that mix letters with digits or symbols (length kept)."""

    def one(m: re.Match[str]) -> str:
        return "".join(LEET.get(c, c) for c in m.group())

    return _LEET_WORD.sub(one, text) if _LEET_CHARS.search(text) else text


def views(text: str, depth: int = 2, _via: str = "", _at: tuple[int, int] | None = None) -> list[View]:
    """The folded text and the folded decodings of its embedded encoded segments."""
    f = fold(text)
    out = [View(f, leet(f.text), _via, _at)]
    if depth <= 0:
        return out
    for via, decoded, span in decodings(text):
        where = span if _at is None else _at
        name = via if not _via else f"{_via}>{via}"
        if via in ("rot13", "reversed") and via in _via:  # each undoes itself
            continue
        out.extend(views(decoded, depth - 1, name, where))
    return out
