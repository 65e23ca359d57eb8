"""The offline Presidio engine: entities, allow-list, custom recognizers, cache, pattern-only mode."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.guards.pii.config import PiiFile
from proxy.guards.pii.engine import PiiEngine

TEXT = (
    "My name is Lena Andersson and I live in Helsinki. Mail lena.a@gmail.com or support@example.com, "
    "call 618-226-1460. Card 4887725427673522, SSN 550-53-3582, IBAN GB10LORI20288482594042, "
    "ip 19.253.176.22, staff badge EMP-204719."
)


def found(engine: PiiEngine, text: str = TEXT) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in engine.analyze([text])[0]:
        out.setdefault(f.entity, []).append(text[f.start : f.end])
    return out


def test_shipped_policy_finds_each_entity_and_skips_allow_listed(pii_engine: PiiEngine) -> None:
    got = found(pii_engine)
    assert got == {
        "PERSON": ["Lena Andersson"],
        "LOCATION": ["Helsinki"],
        "EMAIL_ADDRESS": ["lena.a@gmail.com"],
        "PHONE_NUMBER": ["618-226-1460"],
        "CREDIT_CARD": ["4887725427673522"],
        "US_SSN": ["550-53-3582"],
        "IBAN_CODE": ["GB10LORI20288482594042"],
        "IP_ADDRESS": ["19.253.176.22"],
        "EMPLOYEE_ID": ["EMP-204719"],
    }


def test_batch_matches_single_and_history_is_served_from_cache(pii_engine: PiiEngine) -> None:
    texts = [TEXT, "Nothing personal here.", "Ask Bob Marley in Kingston."]
    first = pii_engine.analyze(texts)
    hits_before = pii_engine.stats["hits"]
    assert pii_engine.analyze(texts[::-1]) == first[::-1]
    assert pii_engine.stats["hits"] - hits_before == 3
    assert first[1] == []


def cfg(**over: Any) -> PiiFile:
    base: dict[str, Any] = {
        "schema_version": 1,
        "ner": False,
        "entities": {
            "PERSON": {"action": "pseudonym"},
            "EMAIL_ADDRESS": {"action": "pseudonym"},
            "CARD_REF": {"action": "redact"},
            "PROJECT": {"action": "redact"},
        },
        "recognizers": [
            {
                "id": "pii.card-ref",
                "entity": "CARD_REF",
                "patterns": [{"regex": r"\bREF\d{8}\b", "score": 0.3}],
                "context": ["reference"],
                "validator": "luhn",
            },
            {"id": "pii.project", "entity": "PROJECT", "deny_list": ["Nightjar", "Kestrel"]},
            {"id": "pii.vip", "entity": "PERSON", "deny_list": ["Jane Doe"]},
        ],
    }
    ents = over.pop("entities", {})
    base["entities"] = {**base["entities"], **ents}
    base.update(over)
    return PiiFile.model_validate(base)


@pytest.fixture(scope="module")
def pattern_engine() -> PiiEngine:
    return PiiEngine(cfg())


def test_pattern_only_mode_finds_structured_data_but_no_ner_names(pattern_engine: PiiEngine) -> None:
    assert pattern_engine.ner is None
    got = found(pattern_engine, "Lena Andersson (lena@corp.io) met Jane Doe about Nightjar.")
    assert got == {"EMAIL_ADDRESS": ["lena@corp.io"], "PERSON": ["Jane Doe"], "PROJECT": ["Nightjar"]}


def test_custom_regex_uses_validator_and_context(pattern_engine: PiiEngine) -> None:
    # REF + Luhn-valid digits with the context word: found; Luhn-invalid: not.
    assert found(pattern_engine, "our reference REF12345674") == {"CARD_REF": ["REF12345674"]}
    assert found(pattern_engine, "our reference REF12345675") == {}


def test_allow_patterns_and_thresholds(pattern_engine: PiiEngine) -> None:
    strict = PiiEngine(cfg(allow_patterns=[r".*@corp\.io"], entities={"EMAIL_ADDRESS": {"threshold": 0.3}}))
    assert found(strict, "write to lena@corp.io or bo@other.org") == {"EMAIL_ADDRESS": ["bo@other.org"]}
    picky = PiiEngine(cfg(entities={"PERSON": {"threshold": 0.95}}))  # deny-list score is 0.9
    assert found(picky, "Jane Doe wrote") == {}
    assert found(pattern_engine, "Jane Doe wrote") == {"PERSON": ["Jane Doe"]}
