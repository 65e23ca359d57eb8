"""``guardrail-proxy rules schema [--out DIR] [--check]``: a JSON Schema per rule-file kind.

Generated from the pydantic models (``proxy.rules.kinds``) and committed under
``rules/schema/`` so editors validate YAML as people type: point the YAML language
server at them (``index.json`` maps each schema to the files it describes) or add
``# yaml-language-server: $schema=schema/<kind>.schema.json`` at the top of a file.
``--check`` writes nothing and exits 1 when the committed schemas are out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from proxy.rules.kinds import KINDS, KindUnavailable

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """File name → content, for every kind whose model is available."""
    out: dict[str, str] = {}
    index: dict[str, Any] = {}
    for k in KINDS:
        try:
            model = k.model_class()
        except KindUnavailable:
            continue
        schema = model.model_json_schema()
        schema = {**schema, "$schema": DRAFT, "title": f"guardrail-proxy {k.name} rules ({k.glob})"}
        if k.description:
            schema.setdefault("description", k.description)
        name = f"{k.name}.schema.json"
        out[name] = _dump(schema)
        index[k.name] = {"schema": name, "files": k.glob, "model": k.model}
    out["index.json"] = _dump(index)
    return out


def stale(out_dir: Path) -> list[str]:
    """Names under ``out_dir`` that differ from what ``render`` produces (or should not be there)."""
    wanted = render()
    bad = [
        name for name, text in wanted.items() if not (out_dir / name).is_file() or (out_dir / name).read_text() != text
    ]
    extra = [p.name for p in out_dir.glob("*.json") if p.name not in wanted] if out_dir.is_dir() else []
    return sorted(bad + extra)


def write(out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for name, text in wanted.items():
        (out_dir / name).write_text(text)
    removed = [p for p in out_dir.glob("*.schema.json") if p.name not in wanted]
    for p in removed:
        p.unlink()
    return sorted(wanted)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: <rules dir>/schema)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the schemas are out of date")


def run(args: argparse.Namespace) -> int:
    from proxy.serve import default_rules_dir

    out_dir: Path = args.out or default_rules_dir() / "schema"
    if args.check:
        bad = stale(out_dir)
        if bad:
            print(f"rules schema: out of date in {out_dir}: {', '.join(bad)}", file=sys.stderr)
            print("run: guardrail-proxy rules schema --out " + str(out_dir), file=sys.stderr)
            return 1
        print(f"rules schema: {out_dir} is up to date")
        return 0
    names = write(out_dir)
    print(f"rules schema: wrote {len(names)} files to {out_dir}")
    return 0


__all__ = ["configure", "render", "run", "stale", "write"]
