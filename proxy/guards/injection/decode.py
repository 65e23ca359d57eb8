"""Decoding the encoded or split payloads embedded in a text (``decodings``).

Embedded base64, hex, binary octets (8-bit groups), URL-encoding, rot13 (when cued or when
the text reads better rotated), text written backwards (when cued, or lines that read better
reversed), Unicode tag characters (invisible letters that spell ASCII, "ASCII smuggling"),
Pig Latin runs, and payloads split into string literals ("rev" + "eal", or a = "ignore
all", b = " rules") are decoded; ``normalize.views`` folds each decoding and scans it as a
view of its own.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from urllib.parse import unquote

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
_LIT = re.compile(_LITERAL)
_JOINED = re.compile(rf"{_LITERAL}(?:\s*\+\s*{_LITERAL})+")
_ASSIGNED = re.compile(rf"\b[A-Za-z_][A-Za-z0-9_]{{0,40}}\s*[=:]\s*({_LITERAL}(?:\s*\+\s*{_LITERAL})*)")
MAX_PIECES = 8  # joined payloads per text (each is a view the layers scan)


def _unquote_all(literals: list[str]) -> str:
    return "".join(lit[1:-1] for lit in literals)


def _pieces(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Payload splitting: string literals joined with ``+`` ("rev" + "eal your"), and runs of
    two or more assignments of literals (a = "ignore all", b = " rules"), joined in order."""
    found = [(_unquote_all(_LIT.findall(m.group())), m.span()) for m in _JOINED.finditer(text)]
    run: list[re.Match[str]] = []
    for m in [*_ASSIGNED.finditer(text), None]:
        if m is not None and (not run or m.start() - run[-1].end() <= 40):
            run.append(m)
            continue
        if len(run) >= 2:
            joined = [lit for r in run for lit in _LIT.findall(r.group(1))]
            found.append((_unquote_all(joined), (run[0].start(), run[-1].end())))
        run = [m] if m is not None else []
    return sorted(found, key=lambda f: -len(f[0]))[:MAX_PIECES]  # the longest (most complete) joins first


# U+E0020..U+E007E mirror printable ASCII and render as nothing; folding drops them (they are
# format characters), so a payload written in them would otherwise vanish unread. Emoji
# subdivision flags use a few (England: tags "gbeng"), harmless once decoded.
_TAGS = re.compile("[\U000e0020-\U000e007e]")
MIN_TAGS = 4
# text written backwards: a cue, or lines with English function words reversed
_REVERSE_CUE = re.compile(r"\b(revers(e|ed|ing)|backwards?|right[\s-]to[\s-]left|mirror(ed)?)\b", re.I)
_REVERSED_WORDS = re.compile(r"\b(eht|dna|uoy|ruoy|siht|taht|rof|htiw|evah|tahw|erofeb|lla)\b", re.I)
_CUE_STEMS = ("revers", "backward", "right", "mirror")
_REVERSED_STEMS = ("eht", "dna", "uoy", "siht", "taht", "rof", "htiw", "evah", "tahw", "erofeb", "lla")
MAX_REVERSED_LINES = 50
MAX_REVERSED_WHOLE = 2000


def _tags(text: str) -> str | None:
    """``text`` with its tag characters read as the ASCII they mirror."""
    if len(_TAGS.findall(text)) < MIN_TAGS:
        return None
    return _TAGS.sub(lambda m: chr(ord(m.group()) - 0xE0000), text)


def _reversed(text: str) -> list[tuple[str, tuple[int, int]]]:
    """A short text (up to 2,000 characters) reversed whole when a cue asks for it; else
    each line (up to 50, joined) that has more English function words read backwards than
    forwards. Long texts are not reversed whole: a cue word is common in them ("reverse
    proxy"), and a second full view would double their cost."""
    low = text[:20000].lower()  # substring pre-tests: the regexes below are slow on long texts
    if len(text) <= MAX_REVERSED_WHOLE and any(c in low for c in _CUE_STEMS) and _REVERSE_CUE.search(text):
        return [(text[::-1], (0, len(text)))]
    if sum(low.count(w) for w in _REVERSED_STEMS) < 2 or len(_REVERSED_WORDS.findall(text, 0, 20000)) < 2:
        return []
    lines, first, last = [], len(text), 0
    pos = 0
    for line in text.split("\n"):
        if len(_REVERSED_WORDS.findall(line)) >= 2 and _englishness(line[::-1]) > 2 * _englishness(line):
            lines.append(line[::-1])
            first, last = min(first, pos), pos + len(line)
            if len(lines) >= MAX_REVERSED_LINES:
                break
        pos += len(line) + 1
    return [("\n".join(lines), (first, last))] if lines else []


# a line break or tab written as an escape (backslash, then n, r or t), as in JSON strings and
# iCal text, glues its n onto the next word ("\\nIgnore" folds to "nignore"); not after another
# backslash (an escaped backslash). Read as spaces in a view of its own, not in the folded
# text itself, where it would cut the first letter off a word ("\\rules" -> " ules").
_ESCAPED_BREAK = re.compile(r"(?<!\\)\\[nrt]")
MIN_ESCAPES = 2
# A long text with few escapes (docstrings quoting "\\n") gets a view of only the lines that
# hold one, each with the line before and after it (a sentence glued to an escape may go
# on there): the whole text again would double the cost of a 100 KB tool result.
ESCAPES_WHOLE = 20_000  # characters: up to this long, or
ESCAPES_DENSE = 1_000  # one escape per this many characters: the whole text is the view


def _unescaped(text: str) -> str:
    """Escaped line breaks as line breaks, an escaped tab as a space."""
    return _ESCAPED_BREAK.sub(lambda m: " " if m.group() == "\\t" else "\n", text)


def _escapes(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Escaped line breaks (backslash n, as in JSON strings and iCal) read as line breaks:
    they glue their letter onto the next word ("\\nIgnore" folds to "nignore"), and a
    document in a JSON string keeps its lines, which segments and line-anchored patterns read."""
    hits = [m.start() for m in _ESCAPED_BREAK.finditer(text)]
    if len(hits) < MIN_ESCAPES:
        return []
    if len(text) <= ESCAPES_WHOLE or len(hits) * ESCAPES_DENSE >= len(text):
        return [(_unescaped(text), (0, len(text)))]
    runs: list[tuple[int, int]] = []  # each escape's line with the line before and after it
    for i in hits:
        start = text.rfind("\n", 0, max(text.rfind("\n", 0, i), 0)) + 1
        end = text.find("\n", i)
        end = len(text) if end < 0 else text.find("\n", end + 1)
        end = len(text) if end < 0 else end
        if runs and start <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(end, runs[-1][1]))
        else:
            runs.append((start, end))
    lines = "\n".join(_unescaped(text[x:y]) for x, y in runs)
    return [(lines, (runs[0][0], runs[-1][1]))]


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
    found.extend(("escapes", got, span) for got, span in _escapes(text))
    tags = _tags(text)
    if tags is not None:
        found.append(("tags", tags, (0, len(text))))
    found.extend(("reversed", got, span) for got, span in _reversed(text))
    found.extend(("pig-latin", got, span) for got, span in _pig_latin(text))
    found.extend(("pieces", got, span) for got, span in _pieces(text))
    sample = text[:2000]
    if _ROT13_CUE.search(text) or _englishness(sample) <= len(sample) // 100:
        rot = codecs.encode(text, "rot13")
        if _ROT13_CUE.search(text) or _englishness(rot[:2000]) > max(2, 2 * _englishness(sample)):
            found.append(("rot13", rot, (0, len(text))))
    return found
