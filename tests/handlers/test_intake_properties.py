"""Property tests: no request body makes intake fail with anything but a ProxyError (4xx)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.context import Route
from proxy.errors import ProxyError
from proxy.handlers.intake import parse_json, validate
from tests.conftest import fuzz_examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.just("gpt-4o-mini"),
        "messages": json_values | st.just([{"role": "user", "content": "hi"}]),
        "stream": json_values,
        "input": json_values,
        "prompt": json_values,
        "max_tokens": json_values,
    },
)


@settings(max_examples=fuzz_examples(300), deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_4xx_or_valid(raw: bytes) -> None:
    try:
        body = parse_json(raw, 64)
    except ProxyError as exc:
        assert 400 <= exc.status < 500
        return
    assert isinstance(body, dict)


@settings(max_examples=fuzz_examples(300), deadline=None)
@given(body=request_like, route=st.sampled_from(list(Route)))
def test_any_json_body_validates_or_is_a_clear_400(body: dict, route: Route) -> None:
    raw = json.dumps(body).encode()
    parsed = parse_json(raw, 64)
    try:
        validate(route, parsed)
    except ProxyError as exc:
        assert exc.status == 400
        assert exc.code in ("missing_required_parameter", "invalid_value")
        assert exc.message and "Traceback" not in exc.message
