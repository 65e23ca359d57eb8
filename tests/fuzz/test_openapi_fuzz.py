"""Schemathesis drives generated requests (valid and invalid) at a live proxy.

The proxy's own code must never answer 5xx or a traceback: every error is OpenAI-shaped.
A long run (about 25,000 cases over all property tests): ``.venv/bin/python bench/fuzz.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from proxy.openapi import spec
from tests.conftest import DEV_KEY, fuzz_examples
from tests.live import live_proxy

EXAMPLES = fuzz_examples(25)
schema = schemathesis.openapi.from_dict(spec())


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_proxy() as url:
        yield url.removesuffix("/v1")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_break_the_proxy(case: schemathesis.Case, base: str) -> None:
    response = case.call(base_url=base, headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=30)
    assert "Traceback" not in response.text
    ctype = (response.headers.get("content-type") or [""])[0]
    if response.status_code >= 400 and ctype.startswith("application/json"):
        err = response.json()["error"]
        assert {"message", "type", "code"} <= set(err)
        assert err["code"] != "internal_error", err
    assert response.status_code != 500, response.text[:300]
    if response.status_code >= 500:
        # Only upstream trouble may be 5xx, and then it says so.
        assert response.json()["error"]["type"] in ("upstream_error", "server_error"), response.text[:300]
