"""pii.yaml is validated at load: errors name the file, the rule id and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.guards.pii.config import PiiFile, load
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import build_ruleset
from tests.guards.pii.conftest import edit_pii


def shipped(rules_copy: Path) -> dict[str, Any]:
    return yaml.safe_load((rules_copy / "pii.yaml").read_text())


def test_shipped_file_loads(pii_cfg: PiiFile) -> None:
    assert pii_cfg.entities["PERSON"].action == "pseudonym"
    assert "ORGANIZATION" not in pii_cfg.active()
    assert pii_cfg.recognizers[0].entity == "EMPLOYEE_ID"


def test_broken_recognizer_regex_is_rejected_with_file_id_and_field(rules_copy: Path) -> None:
    data = shipped(rules_copy)
    data["recognizers"][0]["patterns"][0]["regex"] = r"\bEMP-(\d{6}\b"
    edit_pii(rules_copy, recognizers=data["recognizers"])
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.file.endswith("pii.yaml")
    assert exc.value.rule_id == "pii.employee-id"
    assert exc.value.field == "recognizers.0.patterns.0.regex"
    assert "does not compile" in str(exc.value)


def test_unknown_action_names_the_entity_field(rules_copy: Path) -> None:
    data = shipped(rules_copy)
    data["entities"]["PERSON"]["action"] = "shred"
    edit_pii(rules_copy, entities=data["entities"])
    with pytest.raises(RuleLoadError) as exc:
        load(rules_copy / "pii.yaml")
    assert exc.value.field == "entities.PERSON.action"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entities": {"FOO_BAR": {"action": "redact"}}}, "has no recognizer"),
        ({"output": {"entities": ["US_PASSPORT"]}}, "has no policy"),
        ({"mapping_scope": "forever"}, "Input should be"),
        ({"surfaces": {"respones": True}}, "Extra inputs"),
        ({"allow_patterns": ["[unclosed"]}, "does not compile"),
    ],
)
def test_invalid_settings_are_rejected(rules_copy: Path, change: dict[str, Any], message: str) -> None:
    edit_pii(rules_copy, **change)
    with pytest.raises(RuleLoadError) as exc:
        load(rules_copy / "pii.yaml")
    assert message in str(exc.value)
    assert exc.value.file.endswith("pii.yaml")


def test_recognizer_without_policy_or_with_failing_example_is_rejected(rules_copy: Path) -> None:
    data = shipped(rules_copy)
    del data["entities"]["EMPLOYEE_ID"]
    edit_pii(rules_copy, entities=data["entities"])
    with pytest.raises(RuleLoadError, match="no policy under entities"):
        load(rules_copy / "pii.yaml")
    data = shipped(rules_copy)
    data["entities"]["EMPLOYEE_ID"] = {"action": "hash"}
    data["recognizers"][0]["examples"]["match"] = ["badge 12345"]
    edit_pii(rules_copy, entities=data["entities"], recognizers=data["recognizers"])
    with pytest.raises(RuleLoadError) as exc:
        load(rules_copy / "pii.yaml")
    assert exc.value.rule_id == "pii.employee-id" and "should match" in str(exc.value)


def test_recognizer_needs_patterns_or_deny_list() -> None:
    with pytest.raises(ValueError, match="patterns or a deny_list"):
        PiiFile.model_validate(
            {
                "schema_version": 1,
                "entities": {"CODE": {"action": "redact"}},
                "recognizers": [{"id": "pii.code", "entity": "CODE"}],
            }
        )
