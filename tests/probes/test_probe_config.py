"""Probe expectations: exact, pattern, similarity."""

from __future__ import annotations

import pytest

from proxy.probes.config import Expect, load_probes
from tests.conftest import RULES


@pytest.mark.parametrize(
    ("expect", "answer", "passes"),
    [
        ({"exact": "Paris"}, "  paris ", True),
        ({"exact": "Paris", "case_sensitive": True}, "paris", False),
        ({"exact": "Paris"}, "Paris, France", False),
        ({"pattern": r"\b4\b"}, "The answer is 4.", True),
        ({"pattern": r"\b4\b"}, "The answer is 42.", False),
        ({"similar_to": "I can't help with that."}, "I cannot help with that.", True),
        ({"similar_to": "I can't help with that."}, "Sure! Step one: get a tension wrench.", False),
    ],
)
async def test_expectations(expect: dict[str, object], answer: str, passes: bool) -> None:
    ok, why = await Expect.model_validate(expect).check(answer)
    assert ok is passes, why


@pytest.mark.parametrize("bad", [{}, {"exact": "a", "pattern": "b"}, {"pattern": "("}])
def test_bad_expectations_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Expect.model_validate(bad)


def test_shipped_probes_are_off_and_long_interval() -> None:
    config = load_probes(RULES)
    assert config.enabled is False and config.interval_s >= 600 and not config.fail_ready
