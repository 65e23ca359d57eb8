"""The limits part of ``rules/policy.yaml`` compiled per key: quotas, conversation, fail mode."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from proxy.policy.schema import Budget, ConversationLimits, FailMode, LimitsSettings, PolicyFile, RateLimits
from proxy.state.store import NANO, Quota, Subject


def _nano(usd: float | None) -> int | None:
    return None if usd is None else int(Decimal(str(usd)) * NANO)


def quota(budget: Budget, rates: RateLimits) -> Quota:
    return Quota(
        rpm=rates.rpm,
        tpm=rates.tpm,
        concurrent=rates.concurrent,
        tokens_day=budget.tokens_per_day,
        tokens_month=budget.tokens_per_month,
        usd_day=_nano(budget.usd_per_day),
        usd_month=_nano(budget.usd_per_month),
    )


def merge(*layers: ConversationLimits) -> ConversationLimits:
    """Field by field, the first layer that sets a value wins (key, then team, then default)."""
    values: dict[str, int | None] = {}
    for name in ConversationLimits.model_fields:
        values[name] = next((getattr(c, name) for c in layers if getattr(c, name) is not None), None)
    return ConversationLimits(**values)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    team: str
    subjects: tuple[Subject, ...]  # the key, then its team
    conversation: ConversationLimits
    fail_mode: FailMode

    @property
    def has_usd_budget(self) -> bool:
        return any(s.quota.usd_day is not None or s.quota.usd_month is not None for s in self.subjects)


@dataclass(frozen=True, slots=True)
class LimitsPolicy:
    settings: LimitsSettings
    by_key: dict[str, KeyLimits]

    def for_key(self, key_id: str, team: str) -> KeyLimits:
        found = self.by_key.get(key_id)
        if found is not None:
            return found
        # A principal the policy does not list (should not happen): defaults only.
        return KeyLimits(
            team,
            (Subject("key", key_id, Quota()), Subject("team", team, Quota())),
            self.settings.conversation,
            self.settings.fail_mode,
        )

    @classmethod
    def compile(cls, policy: PolicyFile) -> LimitsPolicy:
        by_key: dict[str, KeyLimits] = {}
        for k in policy.keys:
            team = policy.teams[k.team]
            by_key[k.id] = KeyLimits(
                team=k.team,
                subjects=(
                    Subject("key", k.id, quota(k.budget, k.rate_limits)),
                    Subject("team", k.team, quota(team.budget, team.rate_limits)),
                ),
                conversation=merge(k.conversation, team.conversation, policy.limits.conversation),
                fail_mode=k.fail_mode or policy.limits.fail_mode,
            )
        return cls(policy.limits, by_key)
