"""Scrubbing before records are written, and the similarity fallback."""

from __future__ import annotations

import pytest

from proxy.shadow.compare import scrub, similarity


@pytest.mark.parametrize(
    ("text", "gone", "label"),
    [
        ("write to ana.lopez+x@mail.example.org today", "ana.lopez", "<EMAIL>"),
        ("card 4111-1111-1111-1111 ok", "4111", "<NUMBER>"),
        ("call +44 20 7946 0958 now", "7946", "<PHONE>"),
        ("ssn 078-05-1120", "078-05", "<SSN>"),
        ("key sk-abcdefghijklmnop1234", "abcdefghijklmnop", "<SECRET>"),
        ("IBAN DE89 3704 0044 0532 0130 00", "3704", "<IBAN>"),
        ("from 10.0.12.7", "10.0.12.7", "<IP>"),
    ],
)
def test_scrub_removes_obvious_pii(text: str, gone: str, label: str) -> None:
    out = scrub(text)
    assert gone not in out and label in out


def test_scrub_keeps_ordinary_text_and_placeholders() -> None:
    text = "Hello <PERSON_1>, your order of 3 items ships in 2 days (v1.2)."
    assert scrub(text) == text


async def test_rapidfuzz_similarity_says_so() -> None:
    same = await similarity(None, "rapidfuzz", "The sky is blue.", "The sky is blue.")
    near = await similarity(None, "rapidfuzz", "The sky is blue.", "The sky is grey.")
    empty = await similarity(None, "rapidfuzz", "", "anything")
    assert (same.value, same.method) == (1.0, "rapidfuzz")
    assert near.value is not None and 0.7 < near.value < 1.0
    assert empty.value is None
