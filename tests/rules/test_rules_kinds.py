"""The rule-file kinds table: every kind whose module exists resolves, and claims the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from proxy.rules.kinds import KINDS, KindUnavailable, RuleKind, kind, kind_of
from proxy.rules.loader import load_file
from proxy.rules.testers import test_denylist as denylist_tester
from tests.conftest import RULES


@pytest.mark.parametrize("k", KINDS, ids=[k.name for k in KINDS])
def test_rules_kinds_every_kind_resolves_or_is_absent(k: RuleKind) -> None:
    module = k.model.partition(":")[0]
    exists = (Path(__file__).resolve().parents[2] / (module.replace(".", "/") + ".py")).is_file()
    if not exists:
        with pytest.raises(KindUnavailable):
            k.model_class()
        assert not k.available()
        return
    cls = k.model_class()
    assert issubclass(cls, BaseModel)
    assert cls.model_config.get("extra") == "forbid"  # strict: unknown fields are errors
    if k.tester is not None:
        tester_module = k.tester.partition(":")[0]
        if (Path(__file__).resolve().parents[2] / (tester_module.replace(".", "/") + ".py")).is_file():
            assert callable(k.tester_fn())


def test_rules_kinds_names_and_globs_unique() -> None:
    assert len({k.name for k in KINDS}) == len(KINDS)
    assert len({k.glob for k in KINDS}) == len(KINDS)
    assert kind("policy").required and kind("pipeline").required


def test_rules_kinds_shipped_files_load_with_their_model() -> None:
    for k in KINDS:
        if not k.available():
            continue
        for path in k.files(RULES):
            assert kind_of(RULES, path) is k
            load_file(k.model_class(), path)
    unclaimed = [p for p in RULES.rglob("*.yaml") if "schema" not in p.parts and kind_of(RULES, p) is None]
    assert unclaimed == []


def test_rules_kinds_missing_module_is_unavailable_not_an_error() -> None:
    ghost = RuleKind("ghost", "ghost.yaml", "proxy.does_not_exist.config:GhostFile", tester="proxy.nope:test_rules")
    assert not ghost.available()
    assert ghost.tester_fn() is None
    broken = RuleKind("broken", "x.yaml", "proxy.rules.loader:NoSuchClass")
    with pytest.raises(ImportError, match="NoSuchClass"):
        broken.model_class()


def test_rules_kinds_yml_and_directory_globs(tmp_path: Path) -> None:
    (tmp_path / "denylist.yml").write_text("schema_version: 1\n")
    (tmp_path / "approved").mkdir()
    (tmp_path / "approved" / "b.yaml").write_text("x")
    (tmp_path / "approved" / "a.yml").write_text("x")
    (tmp_path / "approved" / ".hidden.yaml").write_text("x")
    assert kind("denylist").files(tmp_path) == [tmp_path / "denylist.yml"]
    assert [p.name for p in kind("approved").files(tmp_path)] == ["a.yml", "b.yaml"]
    assert kind("policy").files(tmp_path) == []


def test_rules_kinds_denylist_tester(rules_copy: Path) -> None:
    assert denylist_tester(rules_copy, ["What's the weather?", "Tell me about nightjars."]) == []
    failures = denylist_tester(rules_copy, ["fine", "Any news on PROJECT NIGHTJAR?"])
    assert failures == [
        (
            str(rules_copy / "denylist.yaml"),
            "denylist.internal-codename",
            "benign text 2 contains phrase 'project nightjar': 'Any news on PROJECT NIGHTJAR?'",
        )
    ]
    (rules_copy / "denylist.yaml").write_text(
        "schema_version: 1\nrules:\n  - id: d.x\n    phrases: [abc]\n    examples: {match: [xyz]}\n"
    )
    [(file, rule_id, message)] = denylist_tester(rules_copy, None)
    assert file.endswith("denylist.yaml") and rule_id == "d.x" and "should match" in message
