"""What a learned head may blank out before it reads a text (``mask`` in its weights file).

Addresses and numbers: a few training rows share them (the same made-up domain, the same
phone number), and a head would otherwise learn them as attack evidence (".net", "77")
instead of what the text asks of its reader. Training (bench/injection_planted.py) and the
scanner apply the same masks, in the order a weights file lists them.
"""

from __future__ import annotations

import re

# Each alternative starts only where a run of its characters starts (the lookbehinds) and
# is bounded, so a 100 KB token without spaces costs one pass, not one pass per position.
_TLD = "com|net|org|io|dev|app|co|example|info|biz|xyz|site|link|ru|cn|de|uk"
MASKS: dict[str, tuple[re.Pattern[str], str]] = {
    # URLs, e-mail addresses and bare domain names
    "links": (
        re.compile(
            r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,15}://\S+"
            r"|(?<![\w.%+-])[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
            rf"|(?<![a-z0-9.-])(?:[a-z0-9-]{{1,63}}\.){{1,8}}(?:{_TLD})\b"
        ),
        " xlinkx ",
    ),
    "digits": (re.compile(r"\d+"), "0"),
}


def masked(text: str, masks: tuple[str, ...]) -> str:
    """``text`` with each of ``masks`` (names in ``MASKS``) applied in turn."""
    for name in masks:
        pattern, repl = MASKS[name]
        text = pattern.sub(repl, text)
    return text
