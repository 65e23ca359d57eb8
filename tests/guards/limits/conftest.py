"""Fixtures for the limits tests: the shipped rules with a test policy (Redis fixtures: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def limits_rules(rules_copy):  # type: ignore[no-untyped-def]
    """The shipped rules with only the limit guards in the pipeline; see ``write_policy``."""
    import yaml

    pipeline = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    pipeline["request"] = [
        {"guard": "limits", "mode": "enforce", "timeout_ms": 2000, "on_error": "block"},
        {"guard": "conversation_limits", "mode": "enforce", "timeout_ms": 2000, "on_error": "block"},
    ]
    pipeline["response"] = []
    (rules_copy / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    return rules_copy


@pytest.fixture
def write_policy(limits_rules):  # type: ignore[no-untyped-def]
    """``write_policy(team=..., key=..., key2=..., limits=...)`` → rules dir with a test policy.

    Team ``<team>`` has keys ``k1`` (key ``sk-test-k1-secret``, models gpt-4o-mini and
    the alias gpt-4o → gpt-4o-2024-08-06) and ``k2`` (``sk-test-k2-secret``, gpt-4o-mini).
    """
    import yaml

    def write(
        team: str,
        key: dict | None = None,
        key2: dict | None = None,
        team_cfg: dict | None = None,
        limits: dict | None = None,
        models: dict | None = None,
    ):  # type: ignore[no-untyped-def]
        policy = {
            "schema_version": 1,
            "teams": {team: dict(team_cfg or {})},
            "keys": [
                {
                    "id": f"{team}-k1",
                    "team": team,
                    "key": "sk-test-k1-secret",
                    "models": ["gpt-4o-mini", "gpt-4o"],
                    **(key or {}),
                },
                {
                    "id": f"{team}-k2",
                    "team": team,
                    "key": "sk-test-k2-secret",
                    "models": ["gpt-4o-mini"],
                    **(key2 or {}),
                },
            ],
            "models": models or {"gpt-4o-mini": {"pin": "gpt-4o-mini"}, "gpt-4o": {"pin": "gpt-4o-2024-08-06"}},
            "limits": limits or {},
        }
        (limits_rules / "policy.yaml").write_text(yaml.safe_dump(policy))
        return limits_rules

    return write
