from __future__ import annotations

from pathlib import Path

import pytest

from proxy.policy.schema import PolicyFile
from proxy.rules.loader import RuleLoadError, load_file


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("schema_version: 1\nkeys: [\n")
    with pytest.raises(RuleLoadError) as exc:
        load_file(PolicyFile, p)
    assert exc.value.file == str(p) and "line" in str(exc.value)


def test_empty_file_is_an_error_not_an_empty_config(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("")
    with pytest.raises(RuleLoadError, match="empty"):
        load_file(PolicyFile, p)


def test_error_names_rule_id_and_field(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("schema_version: 1\nteams: {a: {}}\nkeys:\n  - id: k1\n    team: a\n    key: 12345678\n    bogus: 1\n")
    with pytest.raises(RuleLoadError) as exc:
        load_file(PolicyFile, p)
    assert exc.value.rule_id == "k1"
    assert exc.value.field is not None and exc.value.field.startswith("keys.0")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match="cannot read"):
        load_file(PolicyFile, tmp_path / "nope.yaml")
