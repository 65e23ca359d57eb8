"""Scoring: signals combine noisy-or, the strongest reached action wins, bad config is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.guards.output.config import OutputFile
from proxy.guards.output.score import build, combine
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from proxy.verdicts import Hit


def test_one_strong_signal_decides_and_weak_ones_add_up() -> None:
    w = {"exfil": 1.0, "drift": 0.5}
    assert combine([Hit("a", 1.0, "exfil")], w) == 1.0
    assert combine([Hit("a", 0.3, "exfil"), Hit("b", 0.3, "exfil")], w) == pytest.approx(0.51)
    assert combine([Hit("a", 0.4, "drift")], w) == pytest.approx(0.2)
    assert combine([], w) == 0.0


def test_the_strongest_reached_action_is_taken() -> None:
    cfg = OutputFile.model_validate(
        {
            "schema_version": 1,
            "actions": [
                {"action": "flag", "score": 0.3},
                {"action": "refuse", "score": 0.6, "message": "no"},
                {"action": "block", "score": 0.9, "message": "stop"},
            ],
        }
    )
    assert cfg.action_for(0.1) is None
    assert [cfg.action_for(s).action for s in (0.3, 0.59, 0.6, 0.95)] == ["flag", "flag", "refuse", "block"]  # type: ignore[union-attr]


def edit(rules_dir: Path, change: dict) -> None:
    path = rules_dir / "output.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        *head, last = dotted.split(".")
        node = data
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"exfil.alow_hosts": ["x"]}, "exfil.alow_hosts", "Extra inputs"),
        ({"actions.1.message": ""}, None, "needs a message"),
        ({"leakage.min_chars": 10}, "leakage.min_chars", "greater than or equal"),
        ({"canary.instruction": "no slot"}, "canary", "{canary}"),
    ],
)
def test_bad_output_rules_are_rejected_naming_the_field(
    rules_copy: Path, change: dict, field: str | None, needle: str
) -> None:
    edit(rules_copy, change)
    with pytest.raises(RuleLoadError) as exc:
        build(BuildContext(rules_copy))
    assert exc.value.file.endswith("output.yaml") and needle in str(exc.value)
    if field:
        assert exc.value.field == field


def test_an_exfil_example_that_no_longer_holds_is_rejected_with_the_rule_id(rules_copy: Path) -> None:
    data = yaml.safe_load((rules_copy / "output.yaml").read_text())
    data["exfil"]["allow_hosts"].append("evil.test")
    (rules_copy / "output.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build(BuildContext(rules_copy))
    assert exc.value.rule_id == "output.exfil" and "should match" in str(exc.value)
