"""Property tests: whatever a rule file holds, loading it gives the model or a RuleLoadError
naming the file — never another exception (a security team's typo must not crash the proxy).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.rules.kinds import KINDS, RuleKind
from proxy.rules.loader import RuleLoadError, load_file
from tests.conftest import fuzz_examples

RULES = Path(__file__).resolve().parents[2] / "rules"
SHIPPED = [(k, f) for k in KINDS if k.available() for f in k.files(RULES)[:1]]
# Read once: the strategy must not depend on a file that could change during the run.
ORIGINAL = {f: yaml.safe_load(f.read_text(encoding="utf-8")) for _, f in SHIPPED}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return value
    data = copy.deepcopy(data)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "unknown" and isinstance(parent, dict):
        parent["zz_unknown_field"] = value
    else:
        parent[last] = value
    return data


def _load_or_rule_error(kind: RuleKind, path: Path) -> None:
    try:
        load_file(kind.model_class(), path)
    except RuleLoadError as exc:
        assert str(path) in str(exc)


def test_every_rule_kind_has_a_shipped_file_to_mutate() -> None:
    assert {k.name for k, _ in SHIPPED} >= {"pipeline", "policy", "injection", "pii", "output", "pricing"}


@pytest.mark.parametrize(("kind", "shipped"), SHIPPED, ids=[k.name for k, _ in SHIPPED])
@settings(max_examples=fuzz_examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_rule_files_load_or_fail_with_the_file_named(
    kind: RuleKind, shipped: Path, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    original = ORIGINAL[shipped]
    path = data.draw(st.sampled_from(_paths(original)))
    how = data.draw(st.sampled_from(["replace", "delete", "unknown"] if path else ["replace"]))
    mutated = _mutate(original, path, how, data.draw(json_values))
    target = tmp_path_factory.mktemp("rules") / shipped.name
    target.write_text(yaml.safe_dump(mutated, allow_unicode=True), encoding="utf-8")
    _load_or_rule_error(kind, target)


@settings(max_examples=fuzz_examples(100), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=300), kind=st.sampled_from([k for k, _ in SHIPPED]))
def test_arbitrary_text_as_a_rule_file_is_a_rule_error_or_valid(
    text: str, kind: RuleKind, tmp_path_factory: pytest.TempPathFactory
) -> None:
    target = tmp_path_factory.mktemp("raw") / "file.yaml"
    target.write_text(text, encoding="utf-8")
    _load_or_rule_error(kind, target)
