"""The real openai SDK, pointed at the proxy by base_url only, cannot tell the difference."""

from __future__ import annotations

import asyncio
import json

import openai

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from tests.conftest import DEV_KEY, UPSTREAM_KEY, ProxyHandle


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


async def test_chat_non_stream_round_trip(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="Paris is the capital of France."))
    resp = await client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Capital of France?"}],
        temperature=0.2,
        extra_body={"some_future_param": {"nested": [1, 2]}},
    )
    assert resp.choices[0].message.content == "Paris is the capital of France."
    assert resp.usage is not None and resp.usage.total_tokens > 0
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["some_future_param"] == {"nested": [1, 2]}  # unknown fields forwarded untouched
    assert sent.json["temperature"] == 0.2
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"  # the proxy's key, not the app's


async def test_chat_stream_text_arrives_whole_and_ends(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="one two three four five six seven"))
    stream = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count"}], stream=True
    )
    parts, finish, usage_seen = [], None, False
    async for chunk in stream:
        usage_seen = usage_seen or chunk.usage is not None
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert "".join(parts) == "one two three four five six seven"
    assert finish == "stop"
    assert not usage_seen  # the client did not ask for usage: the extra chunk is stripped
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}


async def test_chat_stream_usage_when_client_asks(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="hello", usage=(7, 3)))
    stream = await client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [c.usage for c in [c async for c in stream] if c.usage]
    assert len(usages) == 1 and usages[0].prompt_tokens == 7 and usages[0].completion_tokens == 3


async def test_tool_calls_non_stream_and_stream(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    call = {"name": "get_weather", "arguments": '{"city": "Oslo", "unit": "celsius"}'}
    upstream.script(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    c = client(proxy)
    resp = await c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    tc = resp.choices[0].message.tool_calls[0]
    assert tc.function.name == "get_weather" and tc.function.arguments == call["arguments"]
    assert upstream.requests[-1].json["tools"] == tools
    stream = await c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True
    )
    args, name = "", None
    async for chunk in stream:
        for ch in chunk.choices:
            for d in ch.delta.tool_calls or []:
                name = d.function.name or name if d.function else name
                args += (d.function.arguments or "") if d.function else ""
    assert name == "get_weather" and args == call["arguments"]


async def test_multipart_content_forwarded(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    assert upstream.requests[-1].json["messages"][0]["content"] == content


async def test_completions_embeddings_models(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    c = client(proxy)
    comp = await c.completions.create(model="gpt-4o-mini", prompt="Say hi")
    assert comp.choices[0].text == "You said: Say hi"
    emb = await c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    models = await c.models.list()
    assert sorted(m.id for m in models.data) == ["gpt-4o-mini", "text-embedding-3-small"]


async def test_responses_api_stream_and_non_stream(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="A short poem."), Reply(text="Streamed poem here."))
    c = client(proxy)
    resp = await c.responses.create(model="gpt-4o-mini", input="Write a poem")
    assert resp.output_text == "A short poem."
    text = ""
    final = None
    async with c.responses.stream(model="gpt-4o-mini", input="Write a poem") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
        final = await stream.get_final_response()
    assert text == "Streamed poem here." and final.output_text == "Streamed poem here."


async def test_sync_client_works(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    def call() -> tuple[str | None, str]:
        sync = openai.OpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)
        whole = sync.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "sync hi"}])
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in sync.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "sync stream"}], stream=True
            )
            if c.choices
        )
        return whole.choices[0].message.content, streamed

    whole, streamed = await asyncio.to_thread(call)
    assert whole == "You said: sync hi"
    assert streamed == "You said: sync stream"


async def test_langchain_chat_openai(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)
    msg = await llm.ainvoke("hello from langchain")
    assert msg.content == "You said: hello from langchain"
    streamed = "".join([str(c.content) async for c in llm.astream("stream from langchain")])
    assert streamed == "You said: stream from langchain"


async def test_upstream_bytes_pass_through_untouched(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    import aiohttp

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "exact bytes please"}], "x_custom": [1]}
    async with aiohttp.ClientSession() as s:
        async with s.post(proxy.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {DEV_KEY}"}) as r:
            got = await r.read()
    assert got == upstream.sent[-1]
    assert upstream.requests[-1].json == body  # and the request arrived unchanged


async def test_hop_by_hop_and_client_credentials_not_forwarded(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    import aiohttp

    headers = {
        "Authorization": f"Bearer {DEV_KEY}",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "Cookie": "session=abc",
        "api-key": "sk-client-azure-key",
        "OpenAI-Organization": "org-client",
        "X-Custom-Trace": "trace-1",
    }
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(proxy.base_url + "/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200
    sent = {k.lower(): v for k, v in upstream.requests[-1].headers.items()}
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    for name in ("proxy-authorization", "cookie", "api-key", "openai-organization"):
        assert name not in sent
    assert DEV_KEY not in json.dumps(sent)
    assert sent["x-custom-trace"] == "trace-1"  # ordinary headers still go through


async def test_other_v1_paths_forwarded_when_configured(make_proxy, rules_copy, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    import aiohttp
    import yaml

    data = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    data["server"]["other_v1_paths"] = "forward"
    (rules_copy / "pipeline.yaml").write_text(yaml.safe_dump(data))
    p = await make_proxy(rules_dir=rules_copy)
    async with aiohttp.ClientSession() as s:
        async with s.post(p.base_url + "/moderations", json={"input": "x"}, headers={"Authorization": f"Bearer {DEV_KEY}"}) as r:
            assert r.status == 200
    assert upstream.requests[-1].path == "/v1/moderations"
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
