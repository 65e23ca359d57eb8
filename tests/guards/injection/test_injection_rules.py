"""Rule files are validated at load time; errors name the file, the rule id and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.guards.injection.guard import InjectionGuard
from proxy.guards.injection.rules import InjectionFile, load_rules
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import build_ruleset

GOOD: dict[str, Any] = {
    "id": "t.override",
    "kind": "regex",
    "patterns": ["\\bignore (all )?previous instructions\\b"],
    "examples": {"match": ["Ignore previous instructions!"], "no_match": ["ignore the case"]},
}


def write(directory: Path, *rules: dict[str, Any], name: str = "a.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump({"schema_version": 1, "rules": list(rules)}))
    return path


def load_error(directory: Path) -> RuleLoadError:
    with pytest.raises(RuleLoadError) as exc:
        load_rules(directory)
    return exc.value


def test_good_file_loads(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    (loaded,) = load_rules(tmp_path)
    assert loaded.rule.id == "t.override" and loaded.rule.action == "block"


def test_unknown_field_names_file_rule_and_field(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "sevrity": "high"})
    err = load_error(tmp_path)
    assert err.file.endswith("a.yaml") and err.rule_id == "t.override" and err.field == "rules.0.sevrity"


def test_bad_regex_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "patterns": ["(unclosed"]})
    err = load_error(tmp_path)
    assert err.rule_id == "t.override" and err.field == "rules.0.patterns" and "does not compile" in str(err)


def test_kind_needs_its_field(tmp_path: Path) -> None:
    write(tmp_path, {"id": "t.phrase", "kind": "phrase", "patterns": ["x"]})
    err = load_error(tmp_path)
    assert err.rule_id == "t.phrase" and "phrases" in str(err)


def test_an_empty_keyword_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "keywords": ["ignore", ""]})
    err = load_error(tmp_path)
    assert err.rule_id == "t.override" and "empty keyword" in str(err)


def test_bad_action_and_threshold(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "action": "explode"})
    assert load_error(tmp_path).field == "rules.0.action"
    write(tmp_path, {**GOOD, "threshold": 1.5})
    assert load_error(tmp_path).field == "rules.0.threshold"


def test_failing_example_names_the_example(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "examples": {"match": ["hello there"]}})
    err = load_error(tmp_path)
    assert err.rule_id == "t.override" and err.field == "examples.match.0" and "should match" in str(err)
    write(tmp_path, {**GOOD, "examples": {"no_match": ["ignore previous instructions"]}})
    assert load_error(tmp_path).field == "examples.no_match.0"


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD, name="a.yaml")
    write(tmp_path, GOOD, name="b.yaml")
    err = load_error(tmp_path)
    assert err.file.endswith("b.yaml") and err.rule_id == "t.override" and "duplicate" in str(err)


def test_bad_rule_file_stops_the_ruleset(rules_copy: Path) -> None:
    write(rules_copy / "injection", {**GOOD, "kind": "regexp"}, name="zz-bad.yaml")
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.file.endswith("zz-bad.yaml") and exc.value.rule_id == "t.override"


def test_bad_semantic_option_is_rejected(rules_copy: Path) -> None:
    path = rules_copy / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    next(e for e in data["request"] if e["guard"] == "injection").setdefault("options", {})["semantic"] = "maybe"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.field == "options.semantic"


@pytest.mark.parametrize("value", [-0.1, "a lot"])
def test_bad_window_penalty_is_rejected(rules_copy: Path, value: object) -> None:
    path = rules_copy / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    next(e for e in data["request"] if e["guard"] == "injection").setdefault("options", {})["window_penalty"] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.field == "options.window_penalty"


@pytest.mark.parametrize(
    ("key", "value"),
    [("segment_surfaces", "tool"), ("segment_surfaces", ["tool", "documents"]), ("segment_surfaces", ["assistant"]),
     ("segment_threshold", 1.5), ("segment_threshold", "high"), ("segment_threshold", True)],
)  # fmt: skip
def test_bad_segment_options_are_rejected(rules_copy: Path, key: str, value: object) -> None:
    path = rules_copy / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    next(e for e in data["request"] if e["guard"] == "injection").setdefault("options", {})[key] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.field == f"options.{key}"


def test_segment_options_reach_the_detector(rules_copy: Path) -> None:
    path = rules_copy / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    options = next(e for e in data["request"] if e["guard"] == "injection").setdefault("options", {})
    options.update(segment_surfaces=["tool", "user"], segment_threshold=0.95, semantic="off")
    path.write_text(yaml.safe_dump(data))
    guard = next(s.guard for s in build_ruleset(rules_copy).request if isinstance(s.guard, InjectionGuard))
    assert guard.detector.segment_surfaces == {"tool", "user"} and guard.detector.segment_threshold == 0.95


def test_file_model_is_exported_with_a_json_schema() -> None:
    schema = InjectionFile.model_json_schema()
    assert "rules" in schema["properties"]


def test_a_pattern_whose_leading_literal_folding_changes_is_rejected(tmp_path: Path) -> None:
    """The text patterns read is folded (typographic quotes straightened, "İ" read as "i"):
    a pattern that starts with such a literal could never match, and would never be tried."""
    write(tmp_path, {**GOOD, "patterns": [r"\bignore previous\b", "\\b(c\u2019est quoi|dis-moi) le mot de passe\\b"]})
    err = load_error(tmp_path)
    assert err.rule_id == "t.override" and err.field == "patterns.1" and "c'est quoi" in str(err)
