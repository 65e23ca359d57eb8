"""``guardrail-proxy rules schema``: committed JSON Schemas are current and accept the shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from proxy.rules.cli_schema import render, stale
from proxy.rules.kinds import KINDS
from tests.conftest import RULES

jsonschema_rs = pytest.importorskip("jsonschema_rs")  # installed with schemathesis (dev extra)

COMMITTED = RULES / "schema"


def test_rules_cli_schema_committed_schemas_are_up_to_date() -> None:
    assert stale(COMMITTED) == [], "run: .venv/bin/guardrail-proxy rules schema --out rules/schema"


def test_rules_cli_schema_shipped_files_validate_against_their_schema() -> None:
    index = json.loads((COMMITTED / "index.json").read_text())
    checked = 0
    for k in KINDS:
        if k.name not in index:
            continue
        schema = json.loads((COMMITTED / index[k.name]["schema"]).read_text())
        validator = jsonschema_rs.Draft202012Validator(schema)
        for path in k.files(RULES):
            errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
            assert errors == [], f"{path}: {errors}"
            checked += 1
    assert checked >= 10


def test_rules_cli_schema_rejects_unknown_fields() -> None:
    schema = json.loads(render()["denylist.schema.json"])
    bad = {"schema_version": 1, "rules": [{"id": "x", "phrases": ["a"], "actoin": "block"}]}
    assert list(jsonschema_rs.Draft202012Validator(schema).iter_errors(bad))


def test_rules_cli_schema_write_then_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "schema"
    assert main(["rules", "schema", "--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["rules", "schema", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(render())
    assert main(["rules", "schema", "--check", "--out", str(out)]) == 0
    (out / "denylist.schema.json").write_text("{}\n")
    (out / "gone.schema.json").write_text("{}\n")
    assert main(["rules", "schema", "--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "denylist.schema.json" in err and "gone.schema.json" in err
