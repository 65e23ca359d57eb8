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

import base64
import binascii
import codecs
import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

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
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"(?:\\x|0x)?[0-9a-fA-F]{2}(?:[\s:,]?(?:\\x|0x)?[0-9a-fA-F]{2}){7,}")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_BIN = re.compile(r"\b[01]{8}(?:[\s,]+[01]{8}){5,}\b")
_ROT13_CUE = re.compile(r"rot[\s_-]?13|caesar|rotate by 13", re.I)
_PIG_WORD = re.compile(r"\b[a-z]{2,}ay\b")
_PIG_RUN = re.compile(r"\b[a-z]{2,}ay\b(?:[\s,.;:!?'\"()-]+[a-z]{2,}ay\b){3,}", re.I)
_PIG_Y_W = frozenset(
    "you your yours yourself we was were will would with what when where which who whom whose why "
    "word words world yes yet want way well work write wrong".split()
)
_ONSETS = frozenset("th wh sh ch ph pr tr gr br cr dr fr pl cl bl gl fl sl st sp sc sk sm sn sw tw wr kn".split())
_COMMON = frozenset(
    "the and you to of is a in that it for are your this be with not as all on or have what i me my".split()
)


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
    return Folded(s, tuple(origin), tuple(sorted(wide.items())))


def leet(text: str) -> str:
    """Leetspeak folded inside words that mix letters with digits or symbols (length kept)."""

    def one(m: re.Match[str]) -> str:
        return "".join(LEET.get(c, c) for c in m.group())

    return _LEET_WORD.sub(one, text) if _LEET_CHARS.search(text) else text


def _printable(raw: bytes) -> str | None:
    try:
        out = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(out) < 4:
        return None
    good = sum(ch.isprintable() or ch.isspace() for ch in out)
    letters = sum(ch.isalpha() for ch in out)
    return out if good >= 0.95 * len(out) and letters >= 0.5 * len(out.replace(" ", "")) else None


def _b64(seg: str) -> str | None:
    seg = seg.rstrip("=")
    if not re.search(r"[A-Z]", seg) or not re.search(r"[a-z]", seg):
        return None
    pad = "=" * (-len(seg) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            got = _printable(decode(seg + pad))
        except (binascii.Error, ValueError):
            continue
        if got:
            return got
    return None


def _hex(seg: str) -> str | None:
    digits = re.sub(r"\\x|0x|[\s:,]", "", seg)
    try:
        return _printable(bytes.fromhex(digits))
    except ValueError:
        return None


def _englishness(text: str) -> int:
    return sum(w in _COMMON for w in re.findall(r"[a-z]+", text.lower()))


def _unpig(m: re.Match[str]) -> str:
    """One Pig Latin word back: "ethay" -> "the", "useryay" -> "user", "ouyay" -> "you"."""
    base = m.group()[:-2]
    if base[-1:] in ("y", "w") and base[:1] in "aeiou" and len(base) > 2:
        moved = base[-1] + base[:-1]  # "ouy" is "you" moved, or "ou" + "yay": common words decide
        return moved if moved in _PIG_Y_W else base[:-1]
    n = 2 if base[-2:] in _ONSETS and len(base) > 2 else 1  # the moved consonants: a guess
    return base[-n:] + base[:-n] if len(base) > n and base[-1] not in "aeiou" else base


def _pig_latin(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Runs of 4 or more Pig Latin words, decoded, each with its span (an English sentence
    around them does not hide them)."""
    return [(_PIG_WORD.sub(_unpig, m.group().lower()), m.span()) for m in _PIG_RUN.finditer(text)]


_LITERAL = r"""(?:"[^"\n]{1,120}"|'[^'\n]{1,120}'|`[^`\n]{1,120}`)"""
_JOINED = re.compile(rf"{_LITERAL}(?:\s*\+\s*{_LITERAL})+")
_ASSIGNED = re.compile(rf"\b[A-Za-z_][A-Za-z0-9_]{{0,15}}\s*[=:]\s*({_LITERAL})")


def _unquote_all(literals: list[str]) -> str:
    return "".join(lit[1:-1] for lit in literals)


def _pieces(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Payload splitting: string literals joined with ``+`` ("rev" + "eal your"), and runs of
    two or more assignments of literals (a = "ignore all", b = " rules"), joined in order."""
    found = [(_unquote_all(re.findall(_LITERAL, m.group())), m.span()) for m in _JOINED.finditer(text)]
    run: list[re.Match[str]] = []
    for m in [*_ASSIGNED.finditer(text), None]:
        if m is not None and (not run or m.start() - run[-1].end() <= 40):
            run.append(m)
            continue
        if len(run) >= 2:
            found.append((_unquote_all([r.group(1) for r in run]), (run[0].start(), run[-1].end())))
        run = [m] if m is not None else []
    return found


def decodings(text: str) -> list[tuple[str, str, tuple[int, int]]]:
    """(via, decoded text, span in ``text``) for every embedded encoded segment."""
    found: list[tuple[str, str, tuple[int, int]]] = []
    for m in _B64.finditer(text):
        got = _b64(m.group())
        if got:
            found.append(("base64", got, m.span()))
    for m in _HEX.finditer(text):
        got = _hex(m.group())
        if got:
            found.append(("hex", got, m.span()))
    for m in _BIN.finditer(text):
        got = _printable(bytes(int(b, 2) for b in re.findall(r"[01]{8}", m.group())))
        if got:
            found.append(("binary", got, m.span()))
    if len(_PCT.findall(text)) >= 3:
        got = unquote(text)
        if got != text:
            found.append(("url", got, (0, len(text))))
    found.extend(("pig-latin", got, span) for got, span in _pig_latin(text))
    found.extend(("pieces", got, span) for got, span in _pieces(text))
    sample = text[:2000]
    if _ROT13_CUE.search(text) or _englishness(sample) <= len(sample) // 100:
        rot = codecs.encode(text, "rot13")
        if _ROT13_CUE.search(text) or _englishness(rot[:2000]) > max(2, 2 * _englishness(sample)):
            found.append(("rot13", rot, (0, len(text))))
    return found


def views(text: str, depth: int = 2, _via: str = "", _at: tuple[int, int] | None = None) -> list[View]:
    """The folded text and the folded decodings of its embedded encoded segments."""
    f = fold(text)
    out = [View(f, leet(f.text), _via, _at)]
    if depth <= 0:
        return out
    for via, decoded, span in decodings(text):
        where = span if _at is None else _at
        name = via if not _via else f"{_via}>{via}"
        if via == "rot13" and "rot13" in _via:
            continue
        out.extend(views(decoded, depth - 1, name, where))
    return out
