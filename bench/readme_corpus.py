"""Benign technical documents: the README (long description) of every pinned package.

The injection data set has no technical documentation, so the learned heads read API
docs (prompts, responses, clients, "you must") as half-suspicious: before these rows,
1 % of 1 KB README chunks given as tool results were blocked and the semantic gate
opened on 13 % of standard-library docstring mixes. The packages are split in two by a
hash of their name: ``fit`` chunks are extra benign rows for ``bench/injection_heads.py
--readmes``; ``heldout`` chunks, and every chunk of the packages whose docstrings the
benches use (``injection_latency.PACKAGES``), are never trained on and measure it:

    .venv/bin/python bench/readme_corpus.py heldout > readmes-heldout.jsonl
    HF_HUB_OFFLINE=1 .venv/bin/guardrail-proxy eval injection readmes-heldout.jsonl --surface tool

Only distributions pinned in constraints.txt, at their pinned version, are read, so the
chunks (and the weights trained on them) are the same on every machine set up by ``make
setup``. Until 2026-11-26 every installed distribution was read (pip and setuptools, which
``make setup`` upgrades to the newest on the index, the then unpinned rpds-py, anything
else in the venv), and the chunks differed from one machine to the next, so a retrain did
not give the shipped weights.
"""

from __future__ import annotations

import email
import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

CHUNK = 1000  # characters: about one detector window
MIN_TAIL = 300  # a shorter remainder at the end of a README is dropped
# the distributions of injection_latency.PACKAGES (their docstrings are an out-of-domain check)
CHECKED = {
    "aiohttp", "pydantic", "numpy", "pyyaml", "rapidfuzz", "scikit-learn", "redis", "prometheus-client", "jinja2",
    "click", "tokenizers", "scipy", "httpx", "openai", "presidio-analyzer", "spacy", "tqdm", "hypothesis", "matplotlib",
}  # fmt: skip


CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"
# pinned after the shipped heads were trained: not in their corpus until the next retrain
# (adding a README would change the corpus's digest, tests/.../test_injection_training_corpus.py)
LATER = {"pyahocorasick"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path = CONSTRAINTS) -> dict[str, str]:
    """{normalised name: version} of the ``name==version`` lines of constraints.txt."""
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[_norm(name)] = version.strip()
    return pins


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
    """(half, package, chunk) for the README of every installed package pinned in constraints.txt
    at its pinned version, in a fixed order."""
    rows: list[tuple[str, str, str]] = []
    seen = set()
    pins = pinned()
    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        name = _norm(dist.metadata["Name"] or "")
        text = dist.read_text("METADATA")
        if not name or name in seen or name in LATER or not text:
            continue
        if pins.get(name) != dist.version.split("+")[0]:  # unpinned (pip, setuptools, this project) or another version
            if name in pins:
                print(f"readme_corpus: {name} {dist.version} is not the pinned {pins[name]}; skipped", file=sys.stderr)
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
