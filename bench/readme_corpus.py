"""Benign technical documents: the README (long description) of every installed package.

The injection data set has no technical documentation, so the learned heads read API
docs (prompts, responses, clients, "you must") as half-suspicious: before these rows,
1 % of 1 KB README chunks given as tool results were blocked and the semantic gate
opened on 13 % of standard-library docstring mixes. The packages are split in two by a
hash of their name: ``fit`` chunks are extra benign rows for ``bench/injection_heads.py
--readmes``; ``heldout`` chunks, and every chunk of the packages whose docstrings the
benches use (``injection_latency.PACKAGES``), are never trained on and measure it:

    .venv/bin/python bench/readme_corpus.py heldout > readmes-heldout.jsonl
    HF_HUB_OFFLINE=1 .venv/bin/guardrail-proxy eval injection readmes-heldout.jsonl --surface tool

The versions come from constraints.txt (all but rpds-py are pinned), yet on 2026-11-26 a
machine set up by ``make setup`` gave 724 held-out chunks where the weights were trained
with 731: retraining does not reproduce the shipped weights byte for byte there (cause not
found; see docs/injection-detector.md, round E).
"""

from __future__ import annotations

import email
import hashlib
import json
import sys
from importlib import metadata

CHUNK = 1000  # characters: about one detector window
MIN_TAIL = 300  # a shorter remainder at the end of a README is dropped
# the distributions of injection_latency.PACKAGES (their docstrings are an out-of-domain check)
CHECKED = {
    "aiohttp", "pydantic", "numpy", "pyyaml", "rapidfuzz", "scikit-learn", "redis", "prometheus-client", "jinja2",
    "click", "tokenizers", "scipy", "httpx", "openai", "presidio-analyzer", "spacy", "tqdm", "hypothesis", "matplotlib",
}  # fmt: skip


def _chunks(body: str) -> list[str]:
    out, chunk = [], ""
    for para in (p for p in body.split("\n\n") if p.strip()):
        chunk += para + "\n\n"
        if len(chunk) > CHUNK:
            out.append(chunk.strip())
            chunk = ""
    if len(chunk) >= MIN_TAIL:  # the README's last paragraphs
        out.append(chunk.strip())
    return out


def readmes() -> list[tuple[str, str, str]]:
    """(half, package, chunk) for every installed package's README, in a fixed order."""
    rows = []
    seen = set()
    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        text = dist.read_text("METADATA")
        if not name or name in seen or name.startswith("guardrail") or not text:
            continue
        seen.add(name)
        body = email.message_from_string(text).get_payload()
        if not isinstance(body, str):
            continue
        fit = name not in CHECKED and int(hashlib.sha1(name.encode()).hexdigest(), 16) % 2 == 0
        rows.extend(("fit" if fit else "heldout", name, c) for c in _chunks(body))
    return rows


def main() -> int:
    half = sys.argv[1] if len(sys.argv) > 1 else ""
    if half not in ("fit", "heldout"):
        print("usage: readme_corpus.py fit|heldout > FILE.jsonl", file=sys.stderr)
        return 2
    for h, name, text in readmes():
        if h == half:
            print(json.dumps({"text": text, "label": 0, "source": f"readme:{name}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
