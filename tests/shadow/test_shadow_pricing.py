"""Cost in shadow records when rules/pricing.yaml prices both models; tokens only otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import yaml

from proxy import shadow
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.shadow.pricing import Price, parse
from tests.conftest import DEV_KEY
from tests.shadow.conftest import StartProxy, write_yaml
from tests.shadow.test_shadow_worker import calls, configure


@pytest.mark.parametrize(
    ("entry", "price"),
    [
        ({"input_per_1m": 0.15, "output_per_1m": 0.60}, Price(0.15e-6, 0.60e-6)),
        ({"prompt_per_1k": 0.5, "completion_per_1k": 1.5}, Price(0.5e-3, 1.5e-3)),
        ({"input_per_1m": 1.0}, None),  # half a price is no price
    ],
)
def test_price_shapes(entry: dict[str, float], price: Price | None) -> None:
    got = parse({"models": {"m": entry}}).get("m")
    if price is None:
        assert got is None
    else:
        assert got is not None
        assert (got.usd_per_input_token, got.usd_per_output_token) == pytest.approx(
            (price.usd_per_input_token, price.usd_per_output_token)
        )


async def test_costs_recorded_and_usd_cap_applies(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    shipped = yaml.safe_load((rules_copy / "pricing.yaml").read_text())
    write_yaml(
        rules_copy / "pricing.yaml",
        {
            **shipped,
            "models": {
                **shipped["models"],
                "gpt-4o-mini": {"input_per_1m": 1.0, "output_per_1m": 2.0},
                "gpt-next": {"input_per_1m": 10.0, "output_per_1m": 20.0},
            },
        },
    )
    record = configure(rules_copy, candidate, budget={"tokens_per_day": 10**6, "usd_per_day": 0.0005})
    proxy = await start_proxy(rules_copy, shadow.install)
    upstream.default = Reply(text="ok", usage=(10, 10))
    candidate.default = Reply(text="ok", usage=(10, 10))
    c = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)
    for _ in range(3):
        await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        await proxy.app[shadow.SHADOW_WORKER].drain()
    (row,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert row["main"]["cost_usd"] == pytest.approx(30e-6) and row["shadow"]["cost_usd"] == pytest.approx(300e-6)
    assert row["compare"]["cost_priced"] is True
    assert calls(proxy, "ok") == 1 and calls(proxy, "budget_exhausted") == 2  # 0.3 m$ spent, next would pass 0.5
