"""Token estimates (tiktoken, encodings installed offline), output caps, prices, key formats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from proxy.context import Route
from proxy.guards.limits import duration
from proxy.limits import tokens
from proxy.limits.pricing import load_pricing
from proxy.policy.keys import load_policy
from proxy.state import keys
from proxy.state.store import Quota, Reservation, Subject

RULES = Path(__file__).resolve().parents[3] / "rules"


def test_limits_encodings_come_from_the_package_with_tiktoken_hashes() -> None:
    path = tokens.install_encoding_file("o200k_base")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tokens._FILES["o200k_base"]
    enc = tokens.for_model("gpt-4o-2024-08-06")
    assert enc.name == "o200k_base" and enc.encode("Hello world") == [13225, 2375]
    assert tokens.for_model("text-embedding-3-small").name == "cl100k_base"
    assert tokens.for_model("some-future-model").name == "o200k_base"


def test_limits_chat_estimate_counts_text_message_overhead_and_tools() -> None:
    enc = tokens.for_model("gpt-4o-mini")
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello world"}]
    base = tokens.prompt_tokens(Route.CHAT, {"messages": msgs}, enc)
    assert base == len(enc.encode("Be brief.")) + 2 + 3 * 2 + 3
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assert tokens.prompt_tokens(Route.CHAT, {"messages": msgs, "tools": [tool]}, enc) > base
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
    assert tokens.prompt_tokens(Route.CHAT, {"messages": [*msgs, image]}, enc) >= base + tokens.PER_IMAGE


def test_limits_embeddings_estimate_counts_strings_and_token_arrays() -> None:
    enc = tokens.for_model("text-embedding-3-small")
    assert tokens.prompt_tokens(Route.EMBEDDINGS, {"input": "Hello world"}, enc) == 2
    assert tokens.prompt_tokens(Route.EMBEDDINGS, {"input": [1, 2, 3]}, enc) == 3
    assert tokens.prompt_tokens(Route.EMBEDDINGS, {"input": [[1, 2], [3]]}, enc) == 3


@pytest.mark.parametrize(
    ("route", "body", "clamp", "inject", "cap", "rewritten"),
    [
        (Route.CHAT, {"max_tokens": 500}, 100, False, 100, {"max_tokens": 100}),
        (Route.CHAT, {"max_completion_tokens": 50}, 100, False, 50, None),
        (Route.CHAT, {}, 100, False, 1024, None),  # default_output_tokens, body untouched
        (Route.CHAT, {}, 100, True, 100, {"max_completion_tokens": 100}),
        (Route.CHAT, {"max_tokens": 10, "n": 3}, None, False, 30, None),
        (Route.COMPLETIONS, {"max_tokens": 20, "best_of": 4}, 100, False, 80, None),
        (Route.RESPONSES, {"max_output_tokens": 900}, 100, False, 100, {"max_output_tokens": 100}),
        (Route.EMBEDDINGS, {}, 100, True, 0, None),
    ],
)
def test_limits_output_cap_and_clamp(route, body, clamp, inject, cap, rewritten) -> None:  # type: ignore[no-untyped-def]
    assert tokens.output_cap(route, body, clamp, inject, 1024) == cap
    new = tokens.clamped(route, body, clamp, inject)
    assert (None if new is None else {k: v for k, v in new.items() if k not in ("n", "best_of")}) == rewritten


def test_limits_prices_are_exact_nano_usd_and_cover_every_pinned_model() -> None:
    prices = load_pricing(RULES, load_policy(RULES))
    assert prices.nano_usd("gpt-4o-mini", 1_000_000, 0) == 150_000_000  # $0.15 per 1M input tokens
    assert prices.nano_usd("gpt-4o-mini", 1, 1) == 150 + 600
    assert prices.nano_usd("not-a-model", 1, 1) is None
    for entry in load_policy(RULES).models.values():
        assert entry.pin in prices


@pytest.mark.parametrize(("seconds", "text"), [(0.02, "20ms"), (1.5, "1.5s"), (360, "6m0s"), (3723, "1h2m3s")])
def test_limits_reset_durations_use_openai_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_limits_redis_keys_are_versioned_escaped_and_share_the_team_slot() -> None:
    res = Reservation(
        "req{1}", "team:a b", (Subject("key", "k/1", Quota()), Subject("team", "team:a b", Quota())), 1, 1
    )
    all_keys = keys.reservation_keys(res)
    assert len(all_keys) == 1 + 7 * 2
    assert all(k.startswith("gr:v1:{t:team%3Aa%20b}:") for k in all_keys)
    assert all(k.count("{") == 1 and k.count("}") == 1 for k in all_keys)  # names cannot forge a hash tag
