"""``rules/pricing.yaml``: USD per 1M input and output tokens for each pinned model.

The canonical price table: budgets are charged from it (integer nano-USD, rounded up,
so sums are exact). Every model ``policy.yaml`` pins to must be priced, or loading fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field

from proxy.policy.schema import PolicyFile
from proxy.rules.loader import RuleLoadError, Strict, load_file
from proxy.state.store import NANO


class ModelPrice(Strict):
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)


class PricingFile(Strict):
    schema_version: Literal[1]
    currency: Literal["USD"] = "USD"
    models: dict[str, ModelPrice] = Field(default_factory=dict)


def _nano_per_token(usd_per_1m: float) -> Decimal:
    return Decimal(str(usd_per_1m)) * NANO / 1_000_000


@dataclass(frozen=True, slots=True)
class Prices:
    """Nano-USD per token, by exact model name."""

    table: dict[str, tuple[Decimal, Decimal]]

    def __contains__(self, model: str) -> bool:
        return model in self.table

    def nano_usd(self, model: str, prompt_tokens: int, completion_tokens: int) -> int | None:
        price = self.table.get(model)
        if price is None:
            return None
        return math.ceil(price[0] * prompt_tokens + price[1] * completion_tokens)

    def usd(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        nano = self.nano_usd(model, prompt_tokens, completion_tokens)
        return None if nano is None else nano / NANO

    @classmethod
    def compile(cls, pricing: PricingFile) -> Prices:
        return cls(
            {m: (_nano_per_token(p.input_per_1m), _nano_per_token(p.output_per_1m)) for m, p in pricing.models.items()}
        )


def load_pricing(rules_dir: Path, policy: PolicyFile | None = None) -> Prices:
    """Load and compile ``pricing.yaml``; with ``policy``, every pinned model must be priced."""
    path = rules_dir / "pricing.yaml"
    pricing = load_file(PricingFile, path)
    if policy is not None:
        for alias, entry in policy.models.items():
            if entry.pin not in pricing.models:
                raise RuleLoadError(
                    path,
                    f"model {entry.pin!r} (pinned by alias {alias!r} in policy.yaml) has no price",
                    rule_id=alias,
                    field=f"models.{entry.pin}",
                )
    return Prices.compile(pricing)
