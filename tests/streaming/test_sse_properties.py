"""Property tests: the SSE parser returns the same events however the bytes are split."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.streaming.sse import SSEParser, encode
from tests.conftest import fuzz_examples

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=60)
events = st.lists(
    st.tuples(texts, st.one_of(st.none(), st.sampled_from(["response.output_text.delta", "message"]))), max_size=12
)


@settings(max_examples=fuzz_examples(200), deadline=None)
@given(events=events, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20), crlf=st.booleans())
def test_any_split_gives_the_same_events(events: list[tuple[str, str | None]], cuts: list[int], crlf: bool) -> None:
    wire = b"".join(encode(data, name) for data, name in events)
    if crlf:
        wire = wire.replace(b"\n", b"\r\n")
    bounds = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    parser = SSEParser()
    got = []
    for a, b in itertools.pairwise(bounds):
        got.extend(parser.feed(wire[a:b]))
    assert [(e.data, e.event) for e in got] == [(d, n) for d, n in events]
    assert parser.pending() == b""


@settings(max_examples=fuzz_examples(200), deadline=None)
@given(junk=st.binary(max_size=500))
def test_arbitrary_bytes_never_raise(junk: bytes) -> None:
    parser = SSEParser()
    for ev in parser.feed(junk):
        assert isinstance(ev.data, str)


def test_comments_and_multiline_data() -> None:
    parser = SSEParser()
    evs = parser.feed(b": keep-alive\n\ndata: a\ndata: b\n\nevent: x\ndata: {}\n\ndata: [DONE]\n\n")
    assert [(e.data, e.event) for e in evs] == [("a\nb", None), ("{}", "x"), ("[DONE]", None)]
    assert evs[-1].done
