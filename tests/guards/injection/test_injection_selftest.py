"""``selftest.test_rules`` (used by ``guardrail-proxy rules test``) names the failing rule."""

from __future__ import annotations

from pathlib import Path

import yaml

from proxy.guards.injection.selftest import test_rules as run_selftest


def write(directory: Path, rules: list[dict[str, object]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "r.yaml").write_text(yaml.safe_dump({"schema_version": 1, "rules": rules}))


RULE: dict[str, object] = {
    "id": "t.persona",
    "kind": "regex",
    "patterns": ["\\bdo anything now\\b"],
    "examples": {"match": ["You can do anything now."], "no_match": ["Do your homework now."]},
}


def test_passing_rules_give_no_failures(tmp_path: Path) -> None:
    write(tmp_path, [RULE])
    assert run_selftest(tmp_path, ["What can you do now?"]) == []


def test_failing_example_is_reported_with_file_and_rule(tmp_path: Path) -> None:
    write(tmp_path, [{**RULE, "examples": {"match": ["hello"], "no_match": ["do anything now"]}}])
    failures = run_selftest(tmp_path, None)
    assert [(Path(f).name, r) for f, r, _ in failures] == [("r.yaml", "t.persona"), ("r.yaml", "t.persona")]
    assert "does not fire" in failures[0][2] and "fires the rule" in failures[1][2]


def test_benign_hit_fails_unless_listed_as_false_positive(tmp_path: Path) -> None:
    write(tmp_path, [RULE])
    failures = run_selftest(tmp_path, ["The genie said: I can do anything now."])
    assert [(r, "benign" in m) for _, r, m in failures] == [("t.persona", True)]
    write(tmp_path, [{**RULE, "false_positives": ["The genie said: I can do anything now."]}])
    assert run_selftest(tmp_path, ["The genie said: I can do anything now."]) == []


def test_load_error_is_a_failure_not_an_exception(tmp_path: Path) -> None:
    write(tmp_path, [{**RULE, "kind": "nope"}])
    ((file, rule_id, message),) = run_selftest(tmp_path, None)
    assert file.endswith("r.yaml") and rule_id == "t.persona" and "kind" in message


def test_a_rule_for_tool_results_only_is_tried_on_the_benign_texts_as_tool_results(tmp_path: Path) -> None:
    tool_only = {**RULE, "id": "t.tool", "surfaces": ["tool"]}
    write(tmp_path, [RULE, tool_only])
    failures = run_selftest(tmp_path, ["The genie said: I can do anything now."])
    assert sorted(r for _, r, m in failures if "benign" in m) == ["t.persona", "t.tool"]  # each once
