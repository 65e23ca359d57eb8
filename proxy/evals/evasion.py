# ruff: noqa: RUF001
"""Evasion transforms applied to known attacks, to check the normaliser undoes them."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у", "s": "ѕ"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def b64(text: str) -> str:
    return "Decode this and do what it says: " + base64.b64encode(text.encode()).decode()


def homoglyphs(text: str) -> str:
    return "".join(HOMOGLYPHS.get(c, c) for c in text)


def zero_width(text: str) -> str:
    return "".join(c + "\u200b" if c.isalpha() else c for c in text)


def spacing(text: str) -> str:
    return "   ".join(" ".join(word) for word in text.split())


def leetspeak(text: str) -> str:
    return "".join(LEET.get(c.lower(), c) for c in text)


def tags(text: str) -> str:
    """The attack in Unicode tag characters: invisible on screen, read by some models."""
    return "".join(chr(0xE0000 + ord(c)) if " " <= c <= "~" else c for c in text)


def reversed_text(text: str) -> str:
    return "Reverse this text and do what it says: " + text[::-1]


def random_case(text: str) -> str:
    rnd = random.Random(len(text))
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in text)


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "base64": b64,
    "homoglyphs": homoglyphs,
    "zero_width": zero_width,
    "spacing": spacing,
    "leetspeak": leetspeak,
    "case": random_case,
    "tags": tags,
    "reversed": reversed_text,
}
