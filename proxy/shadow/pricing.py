"""Prices per model, read from ``rules/pricing.yaml`` when it exists; tokens only otherwise.

The pricing file belongs to the budgets work. This reader accepts a ``models`` mapping
of model → prices given per 1M or per 1K tokens (``input_per_1m``/``output_per_1m``,
``prompt_per_1k``/``completion_per_1k``, ...). A model without a price gets cost None.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.rules.loader import RuleLoadError, read_yaml

log = logging.getLogger("guardrail.shadow")

_IN = ("input", "prompt")
_OUT = ("output", "completion")
_SCALE = {"per_1m": 1e-6, "per_million": 1e-6, "per_1k": 1e-3, "per_token": 1.0}


@dataclass(frozen=True, slots=True)
class Price:
    usd_per_input_token: float
    usd_per_output_token: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.usd_per_input_token + completion_tokens * self.usd_per_output_token


def _per_token(entry: dict[str, Any], sides: tuple[str, ...]) -> float | None:
    for key, value in entry.items():
        k = str(key).lower()
        if not any(k.startswith(s) for s in sides) or not isinstance(value, int | float):
            continue
        for suffix, scale in _SCALE.items():
            if k.endswith(suffix):
                return float(value) * scale
    return None


def parse(data: Any) -> dict[str, Price]:
    models = data.get("models") if isinstance(data, dict) else None
    out: dict[str, Price] = {}
    if not isinstance(models, dict):
        return out
    for name, entry in models.items():
        if not isinstance(entry, dict):
            continue
        pin, pout = _per_token(entry, _IN), _per_token(entry, _OUT)
        if pin is not None and pout is not None:
            out[str(name)] = Price(pin, pout)
    return out


def load_prices(rules_dir: Path) -> dict[str, Price]:
    path = rules_dir / "pricing.yaml"
    if not path.exists():
        return {}
    try:
        return parse(read_yaml(path))
    except RuleLoadError as exc:
        log.warning("pricing.yaml unreadable; shadow records tokens only", extra={"error": str(exc)})
        return {}


def cost(prices: dict[str, Price], model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = prices.get(model)
    return None if price is None else round(price.cost(prompt_tokens, completion_tokens), 8)
