"""The audit trail: one chained record per request, verify ok, tampering found, drops counted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
from prometheus_client import CollectorRegistry

from proxy.cli import main
from proxy.context import Principal, RequestContext, Route
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.ops.audit import (
    AUDIT,
    GENESIS,
    REDACTED_INPUT,
    REDACTED_OUTPUT,
    AuditConfig,
    AuditMetrics,
    AuditWriter,
    build_record,
)
from proxy.ops.audit_cli import verify
from proxy.verdicts import Flag, Hit
from tests.conftest import DEV_KEY, MakeProxy, ProxyHandle

PROMPT = "Summarise the quarterly numbers for the board"


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


async def audited_proxy(make_proxy: MakeProxy, monkeypatch: pytest.MonkeyPatch, path: Path) -> ProxyHandle:
    monkeypatch.setenv("GUARDRAIL_AUDIT_PATH", str(path))
    monkeypatch.setenv("GUARDRAIL_AUDIT_SAMPLE_RATE", "1")
    return await make_proxy()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_one_chained_record_per_request(
    make_proxy: MakeProxy, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "audit" / "trail.jsonl"
    proxy = await audited_proxy(make_proxy, monkeypatch, path)
    c = client(proxy)
    upstream.script(Reply(text="fine", usage=(9, 2)))
    await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    with pytest.raises(openai.BadRequestError):
        await c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "When does Project Nightjar launch?"}]
        )
    await proxy.app[AUDIT].drained()
    recs = records(path)
    assert [r["status"] for r in recs] == [200, 400]
    assert recs[0]["prev"] == GENESIS and recs[1]["prev"] == recs[0]["hash"]
    ok, blocked = recs
    assert ok["key_id"] == "dev" and ok["team"] == "dev" and ok["model"] == "gpt-4o-mini"
    assert ok["usage"] == {"input_tokens": 9, "output_tokens": 2} and ok["decision"] == "allow"
    assert ok["input"]["chars"] >= len(PROMPT) and len(ok["input"]["hmac_sha256"]) == 64
    assert blocked["decision"] == "block"
    deny = next(v for v in blocked["verdicts"] if v["guard"] == "phrase_denylist")
    assert deny["action"] == "block" and deny["enforced"] is True
    assert [h["rule_id"] for h in deny["hits"]] == ["denylist.internal-codename"]
    assert deny["hits"][0]["score"] == 1.0
    # Sampled at rate 1, but no PII guard left a redacted text: no text at all, only sizes.
    text = path.read_text()
    assert PROMPT not in text and "Nightjar" not in text and DEV_KEY not in text
    assert "redacted" not in ok["input"]
    assert verify(path).ok and verify(path).records == 2


def test_cli_verify_ok_and_tamper_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.jsonl"
    writer = AuditWriter(AuditConfig(path), AuditMetrics(CollectorRegistry()))
    writer._append([{"request_id": f"r{i}", "status": 200} for i in range(4)])
    assert main(["audit", "verify", str(path)]) == 0
    assert "ok, 4 records" in capsys.readouterr().out

    lines = path.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["status"] = 500  # someone edits a record
    path.write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    assert main(["audit", "verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and "edited" in err

    path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # someone removes a record
    assert main(["audit", "verify", str(path)]) == 1
    assert f"{path}:2:" in capsys.readouterr().err

    path.write_text(lines[0] + "\n{not json\n")
    assert main(["audit", "verify", str(path)]) == 1
    assert f"{path}:2:" in capsys.readouterr().err

    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2

    # A rotated trail: the second file verifies when told the first file's last hash.
    first = json.loads(lines[1])
    path.write_text("\n".join(lines[2:]) + "\n")
    assert main(["audit", "verify", str(path)]) == 1
    capsys.readouterr()
    assert main(["audit", "verify", str(path), "--prev", first["hash"]]) == 0


async def test_chain_continues_across_restarts_and_drops_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    reg = CollectorRegistry()
    first = AuditWriter(AuditConfig(path), AuditMetrics(reg))
    await first.start()
    task = asyncio.create_task(first.run())
    assert first.submit({"request_id": "a"}) and first.submit({"request_id": "b"})
    await first.stop()
    await task
    assert first.submit({"request_id": "late"}) is False  # closed: dropped, not blocked

    second = AuditWriter(AuditConfig(path, queue_size=1), AuditMetrics(CollectorRegistry()))
    await second.start()
    assert second.prev == records(path)[-1]["hash"]
    assert second.submit({"request_id": "c"}) is True
    assert second.submit({"request_id": "d"}) is False  # queue full and no writer running: dropped
    task = asyncio.create_task(second.run())
    await second.stop()
    await task
    assert [r["request_id"] for r in records(path)] == ["a", "b", "c"]
    assert verify(path).ok
    assert reg.get_sample_value("guardrail_audit_dropped_total") == 1
    assert reg.get_sample_value("guardrail_audit_records_total") == 2


def ctx_with(extras: dict, request_id: str = "req-1") -> RequestContext:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "call me on 555-0100"}]}
    ctx = RequestContext(request_id, Route.CHAT, Principal("dev", "dev"), body, json.dumps(body).encode())
    ctx.extras.update(extras)
    hit = Hit("pii.phone", score=0.9, layer="presidio", detail="555-0100")
    ctx.record(Flag("pii", (hit,)), enforced=True, elapsed_ms=1.5)
    return ctx


def test_redacted_text_only_when_sampled_and_provided() -> None:
    cfg = AuditConfig(Path("unused"), sample_rate=1.0)
    red = {REDACTED_INPUT: ["call me on <PHONE_NUMBER_1>"], REDACTED_OUTPUT: "noted <PHONE_NUMBER_1>"}
    rec = build_record(ctx_with(red), cfg)
    assert rec["input"]["redacted"] == ["call me on <PHONE_NUMBER_1>"]
    assert rec["output"]["redacted"] == "noted <PHONE_NUMBER_1>"
    assert rec["verdicts"][0]["hits"] == [{"rule_id": "pii.phone", "score": 0.9, "layer": "presidio", "surface": ""}]
    # Never the hit's detail or the raw text, sampled or not, redaction available or not.
    for extras, rate in ((red, 0.0), ({}, 1.0)):
        rec = build_record(ctx_with(extras), AuditConfig(Path("unused"), sample_rate=rate))
        assert "redacted" not in rec["input"] and "redacted" not in rec["output"]
        assert "555-0100" not in json.dumps(rec)
    # The sample is a stable function of the request id, near the configured rate.
    cfg = AuditConfig(Path("unused"), sample_rate=0.25)
    picks = [build_record(ctx_with(red, f"id-{i}"), cfg)["sampled"] for i in range(2000)]
    assert 350 < sum(picks) < 650
    assert picks == [build_record(ctx_with(red, f"id-{i}"), cfg)["sampled"] for i in range(2000)]


def test_config_from_env() -> None:
    assert AuditConfig.from_env({}) is None
    cfg = AuditConfig.from_env(
        {"GUARDRAIL_AUDIT_PATH": "/tmp/x.jsonl", "GUARDRAIL_AUDIT_SAMPLE_RATE": "5", "GUARDRAIL_AUDIT_HMAC_KEY": "k"}
    )
    assert cfg is not None and cfg.sample_rate == 1.0 and cfg.hmac_key == b"k" and cfg.path == Path("/tmp/x.jsonl")
