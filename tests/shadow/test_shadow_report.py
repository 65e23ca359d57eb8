"""``guardrail-proxy shadow report FILE`` over records the proxy really wrote."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import openai
import pytest

from proxy import shadow
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.shadow import report
from tests.conftest import DEV_KEY
from tests.shadow.conftest import StartProxy
from tests.shadow.test_shadow_worker import configure


def run_report(path: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    report.configure(parser)
    return report.run(parser.parse_args([str(path), *extra]))


async def test_report_summarises_per_candidate(
    start_proxy: StartProxy,
    rules_copy: Path,
    upstream: FakeUpstream,
    candidate: FakeUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = configure(rules_copy, candidate)
    proxy = await start_proxy(rules_copy, shadow.install)
    upstream.script(Reply(text="The sky is blue.", usage=(5, 5)), Reply(text="Water is wet.", usage=(5, 4)))
    candidate.script(Reply(text="The sky is blue.", usage=(5, 6)), Reply(status=500))
    c = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)
    for q in ("sky?", "water?"):
        await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
    await proxy.app[shadow.SHADOW_WORKER].drain()
    with record.open("a") as f:
        f.write("not json\n")

    assert run_report(record, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    (summary,) = out["candidates"].values()
    assert out["skipped_lines"] == 1
    assert summary["n"] == 2 and summary["errors"] == {"error: ClientResponseError": 1}
    assert summary["token_delta"]["mean"] == 1.0  # 11 vs 10 tokens on the one that answered
    assert summary["similarity"]["n"] == 1 and summary["similarity"]["p50"] == 1.0
    assert summary["similarity"]["methods"] == {"rapidfuzz": 1}
    assert summary["latency_delta_ms"]["mean"] is not None
    assert summary["cost_delta_usd"]["priced"] == 0

    assert run_report(record) == 0
    text = capsys.readouterr().out
    assert "candidate next (gpt-next): n=2" in text and "similarity         n=1" in text


def test_report_on_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_report(tmp_path / "nope.jsonl") == 2
    assert "cannot read" in capsys.readouterr().err
