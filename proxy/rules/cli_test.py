"""``guardrail-proxy rules test DIR [--benign FILE]``: run every kind's rule tester.

Each tester checks its rules' examples (``match`` must fire, ``no_match`` must not) and,
with ``--benign``, that no rule fires on the benign corpus except texts the rule lists as
known false positives. Failures print as ``file: rule_id: message``; exit status 1.
The files are schema-checked first (as ``rules check`` does).

``--benign`` takes a text file (one text per line; blank lines and ``#`` comments
skipped), a ``.jsonl`` file (strings or objects with a ``text`` field) or a ``.json`` /
``.yaml`` file holding a list of strings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from proxy.rules.cli_check import check_schemas, default_dir
from proxy.rules.kinds import KINDS, Failure


class BenignError(Exception):
    pass


def _as_text(item: Any, where: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return str(item["text"])
    raise BenignError(f"{where}: expected a string or an object with a 'text' string")


def load_benign(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenignError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                try:
                    out.append(_as_text(json.loads(line), f"{path}:{n}"))
                except json.JSONDecodeError as exc:
                    raise BenignError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
        return out
    if path.suffix in (".json", ".yaml", ".yml"):
        try:
            data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise BenignError(f"{path}: cannot parse: {exc}") from None
        if not isinstance(data, list):
            raise BenignError(f"{path}: expected a list of texts")
        return [_as_text(item, f"{path}[{i}]") for i, item in enumerate(data)]
    return [line for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_testers(rules_dir: Path, benign: list[str] | None) -> tuple[list[Failure], list[str], list[str]]:
    """(failures, kinds tested, notes about kinds without a tester)."""
    failures: list[Failure] = []
    tested: list[str] = []
    notes: list[str] = []
    for k in KINDS:
        if not k.files(rules_dir) or not k.available():
            continue
        tester = k.tester_fn()
        if tester is None:
            notes.append(k.name if k.tester is None else f"{k.name} ({k.tester} not available)")
            continue
        try:
            failures.extend(tester(k.tester_dir(rules_dir), benign))
        except Exception as exc:  # a crashing tester is a failure of that kind, not of the CLI
            failures.append((str(rules_dir / k.glob), "-", f"tester {k.tester} failed: {type(exc).__name__}: {exc}"))
        tested.append(k.name)
    return failures, tested, notes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, nargs="?", default=None, help="rules directory (default: ./rules)")
    parser.add_argument("--benign", type=Path, default=None, help="benign corpus: no rule may fire on these texts")
    parser.add_argument("-q", "--quiet", action="store_true", help="print failures only")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.ERROR)
    rules_dir = (args.dir or default_dir()).resolve()
    if not rules_dir.is_dir():
        print(f"{rules_dir}: -: -: rules directory does not exist")
        return 1
    benign: list[str] | None = None
    if args.benign is not None:
        try:
            benign = load_benign(args.benign)
        except BenignError as exc:
            print(f"rules test: {exc}")
            return 2
    schema = check_schemas(rules_dir)
    if schema.errors:
        for p in schema.errors:
            print(p.line(Path.cwd()))
        print(f"rules test: {len(schema.errors)} schema error(s); run 'guardrail-proxy rules check' for details")
        return 1
    failures, tested, notes = run_testers(rules_dir, benign)
    base = Path.cwd()
    for file, rule_id, message in failures:
        try:
            file = str(Path(file).relative_to(base))
        except ValueError:
            pass
        print(f"{file}: {rule_id or '-'}: {message}")
    if failures:
        ids = sorted({r for _, r, _ in failures if r not in ("", "-")})
        print(f"rules test: {len(failures)} failure(s); rules: {', '.join(ids) or '-'}")
        return 1
    if not args.quiet:
        if notes:
            print(f"note: without a tester (schema and load-time checks only): {', '.join(notes)}")
        corpus = f", {len(benign)} benign texts" if benign is not None else ""
        print(f"rules test: OK ({', '.join(tested) or 'no testers'}{corpus})")
    return 0


__all__ = ["configure", "load_benign", "run", "run_testers"]
