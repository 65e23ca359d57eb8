"""Short segments of a long document, which the learned layers read once more on their own.

A short instruction planted in a long tool result (a web page, an e-mail, a file) is
diluted in the learned heads' 1,000-character windows: on 150 short train attacks planted
in 8 KB documents of docstrings, the detector caught 0.527 where the same attacks on their
own gave 0.827 (0.673 with segments; ``bench/injection_documents.py``). So on the surfaces
where documents arrive (``tool`` by default), the detector also fuses the heads' and the
semantic scores of each segment: runs of whole lines of at most ``SEGMENT`` characters, cut at blank
lines. A segment fires only at a stricter fusion threshold than a whole text
(``SEGMENT_THRESHOLD``), since a document gives one chance at a false positive per segment;
the detector skips segments without a cue word and reads them in the text it already folded.
The regex and fuzzy layers need no segments: they read the whole text and are not diluted.
"""

from __future__ import annotations

SEGMENT = 300  # characters: about three sentences
SEGMENT_MIN = 20  # folded characters: shorter segments (code lines, headings) are not read again
# The fusion's probability a segment must reach: the heads' own threshold for firing alone.
# 0.7 (above the best benign segment of the tuning sets, 0.54) blocked 4 of 719 held-out
# README chunks; 0.9 blocks none and catches 0.673 of the planted attacks (0.727 at 0.7).
# docs/injection-detector.md, "Long benign documents as tool results".
SEGMENT_THRESHOLD = 0.9


def segment_spans(text: str, size: int = SEGMENT) -> list[tuple[int, int]]:
    """(start, end) of each segment: consecutive non-blank lines, joined while the run
    stays within ``size`` characters (a longer line is a segment of its own, which the
    heads read in windows as usual). Blank lines end a segment."""
    spans: list[tuple[int, int]] = []
    start = end = -1
    pos = 0
    for line in text.split("\n"):
        a, b = pos, pos + len(line)
        pos = b + 1
        if not line.strip():
            if start >= 0:
                spans.append((start, end))
                start = -1
            continue
        if start >= 0 and b - start > size:
            spans.append((start, end))
            start = -1
        if start < 0:
            start = a
        end = b
    if start >= 0:
        spans.append((start, end))
    return spans
