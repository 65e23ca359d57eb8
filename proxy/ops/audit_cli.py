"""``guardrail-proxy audit verify FILE``: check an audit trail's hash chain.

Exit 0 when every record links to the one before and its hash matches its content;
1 naming the first broken line otherwise; 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from proxy.ops.audit import GENESIS, seal


@dataclass(frozen=True)
class VerifyResult:
    records: int
    broken_line: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_line is None


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def verify(path: Path, prev: str = GENESIS) -> VerifyResult:
    """Walk the chain from ``prev`` (GENESIS, or the last hash of the file before a rotation);
    the first line whose hash or link does not hold is reported."""
    count = 0
    for n, line in _lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            return VerifyResult(count, n, "not valid JSON")
        if not isinstance(rec, dict) or not isinstance(rec.get("hash"), str):
            return VerifyResult(count, n, "no hash field")
        if rec.get("prev") != prev:
            return VerifyResult(count, n, "prev does not match the previous record's hash (removed or reordered)")
        if seal(rec, prev)["hash"] != rec["hash"]:
            return VerifyResult(count, n, "hash does not match the record's content (edited)")
        prev = rec["hash"]
        count += 1
    return VerifyResult(count)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="an audit JSONL file (GUARDRAIL_AUDIT_PATH)")
    parser.add_argument(
        "--prev",
        default=GENESIS,
        help="the hash the first record links to: the last hash of the previous file when the trail was rotated "
        "(default: the genesis hash, 64 zeros)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = verify(args.file, args.prev)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not result.ok:
        print(
            f"{args.file}:{result.broken_line}: chain broken: {result.reason} "
            f"({result.records} records before it verified)",
            file=sys.stderr,
        )
        return 1
    print(f"{args.file}: ok, {result.records} records, chain intact")
    return 0
