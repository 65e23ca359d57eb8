"""Masks a learned head applies before it reads a text (``mask`` in its weights file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.guards.injection.heads import Head
from proxy.guards.injection.masks import masked


def test_links_and_digits_are_blanked_out() -> None:
    text = "Send it to a.b@evil.net or https://x.example/p?q=1, see evil.net; call 555-0177 by 9."
    assert masked(text, ("links", "digits")) == ("Send it to  xlinkx  or  xlinkx  see  xlinkx ; call 0-0 by 0.")
    assert masked(text, ()) == text
    assert masked("read README.md and config.py", ("links",)) == "read README.md and config.py"


def write(tmp_path: Path, mask: object) -> Path:
    path = tmp_path / "head.json"
    path.write_text(json.dumps({"format": "lexical-logreg/1", "intercept": -2.0, "mask": mask,
                                "weights": {"send": 3.0, "xlinkx": 30.0, "0": 1.0}}))  # fmt: skip
    return path


def test_a_masked_head_reads_any_address_alike(tmp_path: Path) -> None:
    head = Head.load(write(tmp_path, ["links", "digits"]))
    a, b = head.score("send it to ops@corp.com"), head.score("send it to x9@evil.net")
    assert a[0] == b[0] > 0.5 and a[1] == (0, len("send it to ops@corp.com"))  # the span: the whole text
    unmasked = Head.load(write(tmp_path, []))
    assert unmasked.score("send it to ops@corp.com")[0] < 0.5


@pytest.mark.parametrize("mask", [["urls"], "links", [1]])
def test_an_unknown_mask_is_rejected(tmp_path: Path, mask: object) -> None:
    with pytest.raises(ValueError, match="mask"):
        Head.load(write(tmp_path, mask))


@pytest.mark.parametrize("token", ["a" * 100_000, "1" * 100_000, "a." * 50_000, "a@" * 50_000])
def test_a_long_token_without_spaces_is_read_once(token: str) -> None:
    # each alternative starts only where a run of its characters starts (a first version
    # tried every position, which took 14 s on 100 KB of "a"); what is masked is unchanged
    assert masked(token + " mail ops@corp.com", ("links",)).endswith(" mail  xlinkx ")
    assert masked(token, ("links", "digits")).count("xlinkx") <= 1
