"""The fault matrix (issue 8): each upstream fault, through the proxy with all shipped guards
and a budgeted key limited to ONE concurrent request, checked for four things:

1. what the client saw: an OpenAI-shaped error with the right status and code, or a stream
   that ends with an error event (never a hang, never a traceback);
2. retries stayed within their bound (1 + max_retries upstream calls at most);
3. usage was settled: nothing stays reserved (spend is back to what was really consumed,
   the one concurrency slot is free again: the next request is admitted);
4. no task is left hanging in the proxy once the client has its answer.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.state.store import Periods, Quota, Subject
from tests.conftest import MakeProxy, ProxyHandle

KEY = "sk-test-faults-secret"
MSG = [{"role": "user", "content": "hello"}]
MAX_RETRIES = 2


@dataclass(frozen=True)
class Case:
    name: str
    replies: tuple[Reply, ...]
    stream: bool = False
    status: int | None = None  # expected HTTP status (None: a stream that ends with an error event)
    code: str | None = None  # expected error.code
    calls: int = 1  # upstream calls expected
    # What is settled: "nothing" when the upstream refused; "prompt" when it took the request
    # but no usage came back (timeout, unreadable body: the prompt estimate is charged, no output).
    charged: str = "nothing"
    opts: dict[str, Any] = field(default_factory=dict)


ERR = {"error": {"message": "upstream says no", "type": "server_error", "code": None}}
CASES = [
    Case("reset_before_headers", (Reply(fault="reset_before_headers"),) * 3, status=502,
         code="upstream_unreachable", calls=3),
    Case("http_500", (Reply(status=500, error=ERR),) * 3, status=500, calls=3),
    Case("http_502", (Reply(status=502, error=ERR),) * 3, status=502, calls=3),
    Case("http_503", (Reply(status=503, error=ERR),) * 3, status=503, calls=3),
    Case("http_429_retry_after", (Reply(status=429, error=ERR, headers={"Retry-After": "0.05"}),) * 3,
         status=429, calls=3),
    Case("slow_first_byte", (Reply(delay_s=1.0),), status=504, code="upstream_timeout", charged="prompt",
         opts={"first_byte_timeout_s": 0.2, "max_retries": 0}),
    Case("invalid_json", (Reply(fault="invalid_json"),), status=502, code="upstream_bad_response", charged="prompt"),
    Case("wrong_content_type", (Reply(fault="wrong_content_type"),), status=502, code="upstream_bad_response",
         charged="prompt"),
    Case("oversized_body", (Reply(fault="oversized"),), status=502, code="upstream_bad_response", charged="prompt"),
    Case("stream_truncated_without_done", (Reply(text="a long answer cut off somewhere", fault="truncate"),),
         stream=True),
    Case("stream_reset_after_headers", (Reply(text="a long answer cut off somewhere", fault="reset_after_headers"),),
         stream=True),
    Case("stream_slow_drip", (Reply(text="slow drip", chunk_delay_s=0.5),), stream=True,
         opts={"idle_timeout_s": 0.2}),
]


def budgeted_rules(rules_copy: Path, team: str) -> Path:
    """The shipped rules (every guard on) with one key: a token budget and 1 concurrent request."""
    policy = yaml.safe_load((rules_copy / "policy.yaml").read_text())
    policy["teams"][team] = {"budget": {"tokens_per_day": 10_000_000}}
    policy["keys"].append({
        "id": f"{team}-key", "team": team, "key": KEY, "models": ["gpt-4o-mini"],
        "rate_limits": {"concurrent": 1},
    })
    (rules_copy / "policy.yaml").write_text(yaml.safe_dump(policy))
    return rules_copy


async def spent_tokens(proxy: ProxyHandle, team: str) -> int:
    state = proxy.runtime.services.state
    day, _ = await state.spent(team, Subject("key", f"{team}-key", Quota()), Periods.at())
    return int(day.tokens)


def _idle(task: asyncio.Task[Any]) -> bool:
    """Tasks that are no leak: a keep-alive connection waiting for its next request (aiohttp's
    RequestHandler with its ``_waiter`` set; the SDK's and the upstream pool's connections)."""
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    name = getattr(coro, "__qualname__", "")
    if name == "RequestHandler.start" and frame is not None:
        return getattr(frame.f_locals.get("self"), "_waiter", None) is not None
    return False


def _where(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack(limit=3)
    return " <- ".join(f"{f.f_code.co_qualname}@{Path(f.f_code.co_filename).name}:{f.f_lineno}" for f in frames)


async def settle_down(baseline: set[asyncio.Task[Any]], proxy: ProxyHandle, team: str) -> tuple[list[str], int]:
    """Wait (up to 3 s) until no new busy task is alive; return (leftover tasks, tokens spent)."""
    left: list[asyncio.Task[Any]] = []
    for _ in range(150):
        me = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t not in baseline and t is not me and not _idle(t)]
        if not left:
            break
        await asyncio.sleep(0.02)
    return [_where(t) for t in left], await spent_tokens(proxy, team)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault_matrix(case: Case, make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream) -> None:
    team = "faults" + uuid.uuid4().hex[:6]
    opts = {"max_retries": MAX_RETRIES, **case.opts}
    proxy = await make_proxy(budgeted_rules(rules_copy, team), **opts)
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0, timeout=20)
    baseline = set(asyncio.all_tasks())
    upstream.script(*case.replies)

    if case.stream:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        with pytest.raises(openai.APIError) as exc:
            async for _ in stream:
                pass
        assert exc.value.message  # the stream ended with an error event the SDK could read
    else:
        with pytest.raises(openai.APIStatusError) as status_exc:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        err = status_exc.value
        assert err.status_code == case.status
        body = err.body if isinstance(err.body, dict) else {}
        assert {"message", "type", "code"} <= set(body), err.body
        if case.code:
            assert body["code"] == case.code
        assert "Traceback" not in str(err.body)

    assert len(upstream.requests) == case.calls <= 1 + opts["max_retries"]
    leftover, spent = await settle_down(baseline, proxy, team)
    assert leftover == [], f"tasks left running after the client had its answer: {leftover}"
    # Never the reservation (prompt estimate + 1024 output tokens) left standing.
    if case.stream:
        assert 0 < spent < 1024  # the prompt and what streamed before the fault
    elif case.charged == "prompt":
        assert 0 < spent < 64  # the prompt estimate only (MSG is a few tokens)
    else:
        assert spent == 0  # the upstream refused: nothing consumed
    # The single concurrency slot was released: the next request is admitted and answered.
    ok = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert ok.choices[0].message.content == "You said: hello"
