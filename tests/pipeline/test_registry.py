from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.pipeline.guard import RequestGuard, ResponseGuard
from proxy.pipeline.registry import REGISTRY
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import build_ruleset
from tests.conftest import RULES


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_guard_resolves_to_a_factory(name: str) -> None:
    assert callable(REGISTRY[name].resolve())


def test_shipped_pipeline_builds_and_names_only_registered_guards() -> None:
    ruleset = build_ruleset(RULES)
    for slot in ruleset.request:
        assert isinstance(slot.guard, RequestGuard)
    for rslot in ruleset.response:
        assert isinstance(rslot.guard, ResponseGuard)
    data = yaml.safe_load((RULES / "pipeline.yaml").read_text())
    for entry in data["request"] + data["response"]:
        assert entry["guard"] in REGISTRY


def test_unknown_guard_in_pipeline_is_rejected(rules_copy: Path) -> None:
    data = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    data["request"].append({"guard": "no_such_guard"})
    (rules_copy / "pipeline.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.field == f"request.{len(data['request']) - 1}.guard" and "no_such_guard" in str(exc.value)


def test_no_guards_builds_empty_pipeline() -> None:
    ruleset = build_ruleset(RULES, no_guards=True)
    assert ruleset.request == () and ruleset.response == ()
