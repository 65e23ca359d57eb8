"""Hot reload in a running app: good changes take effect, bad ones are rejected, ConfigMap swaps seen."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml

from proxy.rules.watch import RULES_WATCHER, interval_from_env, tree_fingerprint
from tests.conftest import DEV_KEY, RULES, MakeProxy, ProxyHandle

CODENAME = [{"role": "user", "content": "When does Project Nightjar launch?"}]
ELEPHANT = [{"role": "user", "content": "Tell me about the purple elephant initiative."}]
NEW_RULE = {
    "id": "denylist.purple-elephant",
    "status": "test",
    "severity": "low",
    "action": "block",
    "phrases": ["purple elephant"],
    "examples": {"match": ["the purple elephant plan"], "no_match": ["an elephant"]},
}


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def add_rule(rules_dir: Path) -> None:
    path = rules_dir / "denylist.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"].append(NEW_RULE)
    path.write_text(yaml.safe_dump(data))


async def until(predicate: Callable[[], Awaitable[bool]], what: str, limit_s: float = 120.0) -> None:
    """Wait for a condition (polls; the limit only turns a hang into a clear failure)."""
    for _ in range(int(limit_s / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for: {what}")


async def readyz(proxy: ProxyHandle) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.root}/readyz") as r:
        return r.status, await r.json()


async def is_blocked(proxy: ProxyHandle, messages: list[dict[str, str]]) -> bool:
    try:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
    except openai.BadRequestError as exc:
        assert exc.body["code"] == "content_filter"  # type: ignore[index]
        return True
    return False


def make_lean(rules_dir: Path) -> Path:
    """Only the deny-list guard: reload is what these tests exercise, not the heavy guards
    (whose build and timeouts depend on the machine's load)."""
    path = rules_dir / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    data["request"] = [{"guard": "phrase_denylist", "timeout_ms": 2000}]
    data["response"] = []
    path.write_text(yaml.safe_dump(data))
    return rules_dir


@pytest.fixture
def lean_rules(rules_copy: Path) -> Path:
    return make_lean(rules_copy)


@pytest.fixture
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDRAIL_RELOAD_INTERVAL_S", "0.05")


async def test_reload_valid_change_is_enforced_without_restart(
    fast_poll: None, make_proxy: MakeProxy, lean_rules: Path
) -> None:
    proxy = await make_proxy(rules_dir=lean_rules)
    assert not await is_blocked(proxy, ELEPHANT)
    before = proxy.runtime.rules.current
    add_rule(lean_rules)
    await until(lambda: is_blocked(proxy, ELEPHANT), "the new rule to block")
    after = proxy.runtime.rules.current
    assert before is not None and after is not None and after.version != before.version
    assert await is_blocked(proxy, CODENAME)  # the old rules are still there
    status, body = await readyz(proxy)
    detail = body["checks"]["rules_reload"]
    assert status == 200 and detail["state"] == "current" and detail["reloads_ok"] >= 1
    assert detail["version"] == after.version


async def test_reload_bad_change_rejected_while_requests_flow(
    fast_poll: None, make_proxy: MakeProxy, lean_rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await make_proxy(rules_dir=lean_rules)
    good = proxy.runtime.rules.current
    path = lean_rules / "denylist.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0]["actoin"] = "flag"  # a typo: unknown field
    data["rules"].append(NEW_RULE)
    outcomes: list[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        c = client(proxy)
        while not stop.is_set():
            ok = await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            outcomes.append("ok" if ok.choices[0].message.content else "empty")
            outcomes.append("blocked" if await is_blocked(proxy, CODENAME) else "NOT BLOCKED")
            outcomes.append("NEW RULE ACTIVE" if await is_blocked(proxy, ELEPHANT) else "ok")

    flow = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(0.1)
        path.write_text(yaml.safe_dump(data))

        async def rejected() -> bool:
            return proxy.runtime.rules.status.rejected >= 1

        await until(rejected, "the bad change to be rejected")
        await asyncio.sleep(0.2)  # let traffic run on the last good ruleset
    finally:
        stop.set()
        await flow
    assert outcomes and set(outcomes) <= {"ok", "blocked"}, outcomes
    assert proxy.runtime.rules.current is good
    status, body = await readyz(proxy)
    detail = body["checks"]["rules_reload"]
    assert status == 200 and body["status"] == "ready"
    assert detail["state"] == "serving_last_good" and detail["version"] == good.version  # type: ignore[union-attr]
    assert "denylist.yaml" in detail["last_error"] and "denylist.internal-codename" in detail["last_error"]
    assert "actoin" in detail["last_error"]
    assert any("rejected" in r.getMessage() for r in caplog.records if r.name == "guardrail.rules")
    # Rejected once, not again on every poll.
    await asyncio.sleep(0.3)
    assert proxy.runtime.rules.status.rejected == 1
    # Fixing the file recovers.
    del data["rules"][0]["actoin"]
    path.write_text(yaml.safe_dump(data))
    await until(lambda: is_blocked(proxy, ELEPHANT), "the fixed change to load")
    _, body = await readyz(proxy)
    assert body["checks"]["rules_reload"]["state"] == "current"


def configmap_layout(mount: Path, rules: Path, stamp: str) -> Path:
    """What the kubelet writes: ..<stamp>/ with the files, ..data -> ..<stamp>, names -> ..data/name."""
    mount.mkdir(exist_ok=True)
    shutil.copytree(rules, mount / f"..{stamp}")
    os.symlink(f"..{stamp}", mount / "..data")
    for entry in sorted((mount / f"..{stamp}").iterdir()):
        os.symlink(f"..data/{entry.name}", mount / entry.name)
    return mount / f"..{stamp}"


def configmap_swap(mount: Path, rules: Path, stamp: str) -> None:
    """An atomic update: new timestamped dir, ..data swapped by rename, old dir removed."""
    old = os.readlink(mount / "..data")
    shutil.copytree(rules, mount / f"..{stamp}")
    os.symlink(f"..{stamp}", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    shutil.rmtree(mount / old)


async def test_reload_configmap_symlink_swap(fast_poll: None, make_proxy: MakeProxy, tmp_path: Path) -> None:
    lean = tmp_path / "lean"
    shutil.copytree(RULES, lean)
    make_lean(lean)
    mount = tmp_path / "mount"
    configmap_layout(mount, lean, "2026_11_25_10_00_00.1")
    proxy = await make_proxy(rules_dir=mount)
    assert not await is_blocked(proxy, ELEPHANT)
    edited = tmp_path / "edited"
    shutil.copytree(lean, edited)
    add_rule(edited)
    configmap_swap(mount, edited, "2026_11_25_10_05_00.2")
    await until(lambda: is_blocked(proxy, ELEPHANT), "the swapped ConfigMap to be loaded")
    assert proxy.app[RULES_WATCHER].holder.status.rejected == 0


def test_reload_fingerprint_sees_changes_behind_symlinked_dirs(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    snapshot = configmap_layout(mount, RULES, "a")
    first = tree_fingerprint(mount)
    assert tree_fingerprint(mount) == first
    approved = next((snapshot / "approved").glob("*.yaml"))
    approved.write_text(approved.read_text() + "\n# edited\n")  # only inside a symlinked sub-directory
    assert tree_fingerprint(mount) != first
    (mount / ".swp").write_text("editor noise")  # dot files do not count
    second = tree_fingerprint(mount)
    (mount / ".other").write_text("more noise")
    assert tree_fingerprint(mount) == second


def test_reload_interval_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARDRAIL_RELOAD_INTERVAL_S", raising=False)
    assert interval_from_env() == 2.0
    monkeypatch.setenv("GUARDRAIL_RELOAD_INTERVAL_S", "0")
    assert interval_from_env() == 0.0
    monkeypatch.setenv("GUARDRAIL_RELOAD_INTERVAL_S", "0.5")
    assert interval_from_env() == 0.5
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("GUARDRAIL_RELOAD_INTERVAL_S", bad)
        assert interval_from_env() == 2.0


async def test_reload_polling_off_only_trigger_reloads(
    make_proxy: MakeProxy, lean_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_RELOAD_INTERVAL_S", "0")
    proxy = await make_proxy(rules_dir=lean_rules)
    watcher = proxy.app[RULES_WATCHER]
    add_rule(lean_rules)
    await asyncio.sleep(0.2)
    assert not await is_blocked(proxy, ELEPHANT)  # nobody polls
    watcher.trigger()  # what SIGHUP calls
    await until(lambda: is_blocked(proxy, ELEPHANT), "the forced reload")
    assert watcher.forced == 1


async def test_reload_unexpected_build_error_is_rejected_once(
    fast_poll: None, make_proxy: MakeProxy, lean_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guard factory raising something other than RuleLoadError is a rejected change, not a dead watcher."""
    from proxy.pipeline import registry

    proxy = await make_proxy(rules_dir=lean_rules)
    good = proxy.runtime.rules.current
    monkeypatch.setitem(
        registry.REGISTRY, "phrase_denylist", registry.GuardSpec("request", "proxy.rules.watch:no_such")
    )
    add_rule(lean_rules)

    async def rejected() -> bool:
        return proxy.runtime.rules.status.rejected >= 1

    await until(rejected, "the failing build to be rejected")
    await asyncio.sleep(0.3)
    status = proxy.runtime.rules.status
    assert status.rejected == 1 and status.last_error is not None and "AttributeError" in status.last_error
    assert proxy.runtime.rules.current is good
    assert not await is_blocked(proxy, ELEPHANT)
