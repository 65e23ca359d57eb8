"""SIGHUP on a real ``guardrail-proxy serve`` process forces a rules reload and does not kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DEV_KEY
from tests.live import BIN, free_port, wait_http


def post_chat(base: str, text: str) -> int:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def readyz(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/readyz", timeout=10) as r:
        return dict(json.loads(r.read()))


def test_reload_sighup_forces_reload_in_a_live_process(rules_copy: Path) -> None:
    # Polling off: only SIGHUP can bring the change in. Only the deny-list guard runs, so the
    # process starts without loading the embedding model.
    pipeline = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    pipeline["request"] = [e for e in pipeline["request"] if e["guard"] == "phrase_denylist"]
    pipeline["response"] = []
    (rules_copy / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GUARDRAIL_RELOAD_INTERVAL_S": "0"}
    up_port, px_port = free_port(), free_port()
    base = f"http://127.0.0.1:{px_port}"
    up = subprocess.Popen(
        [str(BIN / "guardrail-proxy"), "fake-upstream", "--port", str(up_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    px = None
    try:
        wait_http(f"http://127.0.0.1:{up_port}/v1/models")
        px = subprocess.Popen(
            [
                str(BIN / "guardrail-proxy"),
                "serve",
                "--port",
                str(px_port),
                "--upstream",
                f"http://127.0.0.1:{up_port}/v1",
                "--rules",
                str(rules_copy),
                "--log-level",
                "info",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_http(f"{base}/healthz")
        assert post_chat(base, "the purple elephant plan") == 200
        version = readyz(base)["checks"]["rules_reload"]["version"]

        deny = yaml.safe_load((rules_copy / "denylist.yaml").read_text())
        deny["rules"].append({"id": "denylist.purple-elephant", "action": "block", "phrases": ["purple elephant"]})
        (rules_copy / "denylist.yaml").write_text(yaml.safe_dump(deny))
        time.sleep(0.3)
        assert post_chat(base, "the purple elephant plan") == 200  # polling is off

        px.send_signal(signal.SIGHUP)
        detail: dict[str, Any] = {}
        for _ in range(200):
            detail = readyz(base)["checks"]["rules_reload"]
            if detail["reloads_ok"] >= 1:
                break
            time.sleep(0.05)
        assert px.poll() is None, "the proxy died on SIGHUP"
        assert detail["reloads_forced"] == 1 and detail["version"] != version
        assert post_chat(base, "the purple elephant plan") == 400

        # A bad file + SIGHUP: rejected, the process keeps serving the last good rules.
        (rules_copy / "denylist.yaml").write_text("schema_version: 1\nrules: [\n")
        px.send_signal(signal.SIGHUP)
        for _ in range(200):
            detail = readyz(base)["checks"]["rules_reload"]
            if detail["reloads_rejected"] >= 1:
                break
            time.sleep(0.05)
        assert px.poll() is None
        assert detail["state"] == "serving_last_good" and "invalid YAML" in detail["last_error"]
        assert post_chat(base, "the purple elephant plan") == 400
    finally:
        logs = b""
        if px is not None:
            px.terminate()
            _, logs = px.communicate(timeout=10)
        up.terminate()
        up.wait(timeout=10)
    lines = [json.loads(line) for line in logs.decode().splitlines() if line.startswith("{")]
    messages = [rec["msg"] for rec in lines]
    assert "SIGHUP received: reloading rules" in messages
    assert any(m.startswith("rules reload rejected") for m in messages)
