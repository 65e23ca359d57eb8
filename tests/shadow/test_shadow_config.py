"""``rules/shadow.yaml`` validation and the deterministic sampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.rules.loader import RuleLoadError
from proxy.shadow.config import load_shadow, sampled
from tests.conftest import RULES


def test_shipped_file_loads_and_is_off() -> None:
    config = load_shadow(RULES)
    assert config.enabled is False
    assert config.pick("chat.completions", "dev", "gpt-4o-mini", "a" * 32) is None


def test_missing_file_means_disabled(tmp_path: Path) -> None:
    assert load_shadow(tmp_path).enabled is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rules": [{"id": "r", "candidate": "ghost", "sample": 0.5}]}, None),
        ({"rules": [{"id": "r", "candidate": "next-mini", "sample": 1.5}]}, "rules.0.sample"),
        ({"candidates": [{"id": "x", "model": "m", "api_key_env": "sk-literal-key"}]}, "candidates.0.api_key_env"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, change: dict[str, object], field: str | None) -> None:
    data = yaml.safe_load((RULES / "shadow.yaml").read_text()) | change
    (tmp_path / "shadow.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        load_shadow(tmp_path)
    assert "shadow.yaml" in str(exc.value)
    assert exc.value.field == field
    if field is None:
        assert "unknown candidate 'ghost'" in str(exc.value)


def test_sampler_is_deterministic_and_close_to_the_share() -> None:
    ids = [f"{i:032x}" for i in range(4000)]
    picked = [sampled("seed", rid, 0.25) for rid in ids]
    assert picked == [sampled("seed", rid, 0.25) for rid in ids]
    assert 0.22 < sum(picked) / len(ids) < 0.28
    assert picked != [sampled("other-seed", rid, 0.25) for rid in ids]
