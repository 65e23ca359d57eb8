"""The learned heads' README rows reproduce on any machine set up by ``make setup``."""

from __future__ import annotations

import hashlib
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import readme_corpus

# The chunks the shipped weights (rules/injection/learned/) were trained on, 2026-11-26.
FIT = (592, "ceb7f3c8a5dd89cc")
HELDOUT = (719, "2946b366468cc592")


def _digest(half: str) -> tuple[int, str]:
    chunks = [c for h, _, c in readme_corpus.readmes() if h == half]
    return len(chunks), hashlib.sha256("\0".join(chunks).encode()).hexdigest()[:16]


def test_the_readme_chunks_are_the_ones_the_heads_were_trained_on() -> None:
    # A pinned version that changed in constraints.txt changes the chunks: retrain the heads
    # (docs/injection-detector.md, "Training the learned heads") and record the new digests.
    assert (_digest("fit"), _digest("heldout")) == (FIT, HELDOUT)


def test_only_pinned_distributions_are_read() -> None:
    pins = readme_corpus.pinned()
    names = {name for _, name, _ in readme_corpus.readmes()}
    assert names and names <= set(pins)
    assert "pip" not in names and "setuptools" not in names and "guardrail-proxy" not in names
    assert "rpds-py" in pins  # it used to float, and its README with it
