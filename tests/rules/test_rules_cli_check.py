"""``guardrail-proxy rules check``: success on the shipped rules, precise errors on broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from tests.conftest import RULES


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["rules", "check", *args])
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def edit(path: Path, fn: object) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data))


def test_rules_cli_check_shipped_rules_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_check(capsys, str(RULES))
    assert code == 0, lines
    assert lines[-1].startswith("rules check: OK")


def test_rules_cli_check_schema_error_names_file_rule_field(
    capsys: pytest.CaptureFixture[str], rules_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(rules_copy.parent)
    edit(rules_copy / "denylist.yaml", lambda d: d["rules"][0].update(severity="urgent"))
    edit(rules_copy / "policy.yaml", lambda d: d["keys"][0].update(tean="dev"))
    code, lines = run_check(capsys, "rules")
    assert code == 1
    assert "rules/denylist.yaml: denylist.internal-codename: rules.0.severity: Input should be" in lines[0] + lines[1]
    assert any(line.startswith("rules/policy.yaml: dev: keys.0.tean: Extra inputs are not permitted") for line in lines)
    assert lines[-1].startswith("rules check: 2 errors")


def test_rules_cli_check_unknown_guard_reference(capsys: pytest.CaptureFixture[str], rules_copy: Path) -> None:
    edit(rules_copy / "pipeline.yaml", lambda d: d["request"].append({"guard": "phrase_denylsit"}))
    edit(rules_copy / "pipeline.yaml", lambda d: d["response"].append({"guard": "phrase_denylist"}))
    code, lines = run_check(capsys, str(rules_copy))
    assert code == 1
    errors = [line for line in lines if "pipeline.yaml" in line]
    assert any(": phrase_denylsit: request." in e and "unknown guard 'phrase_denylsit'" in e for e in errors), errors
    assert any(": phrase_denylist: response." in e and "is a request guard" in e for e in errors), errors


def test_rules_cli_check_unpriced_model(capsys: pytest.CaptureFixture[str], rules_copy: Path) -> None:
    edit(rules_copy / "policy.yaml", lambda d: d["models"].update({"gpt-9": {"pin": "gpt-9-2030-01-01"}}))
    code, lines = run_check(capsys, str(rules_copy))
    assert code == 1
    assert any("gpt-9" in line and "no price" in line for line in lines), lines


def test_rules_cli_check_compile_error_and_bad_yaml(capsys: pytest.CaptureFixture[str], rules_copy: Path) -> None:
    (rules_copy / "injection" / "override.yaml").write_text("schema_version: 1\nrules: [\n")
    code, lines = run_check(capsys, str(rules_copy))
    assert code == 1
    assert any("injection/override.yaml: -: -: invalid YAML at line" in line for line in lines), lines


def test_rules_cli_check_missing_required_and_missing_dir(capsys: pytest.CaptureFixture[str], rules_copy: Path) -> None:
    (rules_copy / "policy.yaml").unlink()
    code, lines = run_check(capsys, str(rules_copy))
    assert code == 1 and any("required policy file is missing" in line for line in lines)
    code, lines = run_check(capsys, str(rules_copy / "nope"))
    assert code == 1 and any("rules directory does not exist" in line for line in lines)


def test_rules_cli_check_unclaimed_file_is_a_warning(capsys: pytest.CaptureFixture[str], rules_copy: Path) -> None:
    (rules_copy / "denylsit.yaml").write_text("schema_version: 1\n")
    code, lines = run_check(capsys, str(rules_copy), "--no-compile")
    assert code == 0
    assert any(line.startswith("warning: ") and "denylsit.yaml" in line and "ignored" in line for line in lines)
