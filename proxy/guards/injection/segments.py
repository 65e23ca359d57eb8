"""Short segments of a long document, which the learned layers read once more on their own.

A short instruction planted in a long tool result (a web page, an e-mail, a file) is
diluted in the learned heads' 1,000-character windows: on 150 short train attacks planted
in 8 KB documents of docstrings, the detector caught 0.527 where the same attacks on their
own gave 0.827 (0.673 with segments; ``bench/injection_documents.py``). So on the surfaces
where documents arrive (``SEGMENT_SURFACES``), the detector also fuses the heads' and the
semantic scores of each segment: runs of whole lines of at most ``SEGMENT`` characters, cut
at blank lines. A segment fires only at a stricter fusion threshold than a whole text
(``SEGMENT_THRESHOLD``), since a document gives one chance at a false positive per segment;
the detector skips segments without a cue word and reads them in the text it already folded.
The regex and fuzzy layers need no segments: they read the whole text and are not diluted.
"""

from __future__ import annotations

import re

from proxy.guards.injection.normalize import LINE_BREAKS

SCANNED_SURFACES = ("user", "tool", "tool_args", "prompt")  # what the injection guard scans
SEGMENT_SURFACES = ("tool",)  # the default: where documents and tool results arrive
SEGMENT = 300  # characters: about three sentences
# A line longer than SEGMENT but at most this long is also a segment as a whole: cutting it
# after sentence ends isolates an instruction appended to a one-line paragraph, but splits
# a long one-line instruction (planted recall 0.673 -> 0.653 with the cut alone).
WHOLE_LINE = 1000
SEGMENT_MIN = 20  # folded characters: shorter segments (code lines, headings) are not read again
# The fusion's probability a segment must reach: the heads' own threshold for firing alone.
# 0.7 (above the best benign segment of the tuning sets, 0.54) blocked 4 of 719 held-out
# README chunks; 0.9 blocks none and catches 0.673 of the planted attacks (0.727 at 0.7).
# docs/injection-detector.md, "Long benign documents as tool results".
SEGMENT_THRESHOLD = 0.9


# Every line break the folding step reads as whitespace, CRLF first.
_BREAK = re.compile(f"\r\n|[{LINE_BREAKS}]")
# Where a long line (a paragraph written on one line) may be cut: after a sentence's end.
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def _lines(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for m in _BREAK.finditer(text):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, len(text)))
    return out


def _pieces(text: str, a: int, b: int, size: int) -> list[tuple[int, int]]:
    """A line longer than ``size`` cut after sentence ends into runs of at most ``size``
    characters (a longer sentence stays whole); a shorter line as it is."""
    if b - a <= size:
        return [(a, b)]
    out: list[tuple[int, int]] = []
    start, prev = a, None  # prev: (end, next start) of the last sentence end in the run
    ends = [(m.start(), m.end()) for m in _SENTENCE_END.finditer(text, a, b)] + [(b, b)]
    for e, nxt in ends:
        if prev is not None and e - start > size:
            out.append((start, prev[0]))
            start = prev[1]
        prev = (e, nxt) if e > start else None
    out.append((start, b))
    return out


def segment_spans(text: str, size: int = SEGMENT) -> list[tuple[int, int]]:
    """(start, end) of each segment: consecutive non-blank lines, joined while the run
    stays within ``size`` characters; a line longer than ``size`` (a paragraph on one line)
    is cut after sentence ends, and is one more segment as a whole when it holds at most
    ``WHOLE_LINE`` characters (those come last). Blank lines end a segment. Any line break
    counts (LF, CRLF, CR, U+2028 and the others the folding step reads as whitespace)."""
    spans: list[tuple[int, int]] = []
    whole: list[tuple[int, int]] = []  # long lines of up to WHOLE_LINE characters, read whole as well
    start = end = -1
    for a, b in _lines(text):
        if not text[a:b].strip():
            if start >= 0:
                spans.append((start, end))
                start = -1
            continue
        if size < b - a <= WHOLE_LINE:
            whole.append((a, b))
        for pa, pb in _pieces(text, a, b, size):
            if start >= 0 and pb - start > size:
                spans.append((start, end))
                start = -1
            if start < 0:
                start = pa
            end = pb
    if start >= 0:
        spans.append((start, end))
    return spans + whole
