"""Operators, pseudonym vaults and the placeholder hold-back, without the analyzer."""

from __future__ import annotations

import pytest

from proxy.guards.pii.config import Mask
from proxy.guards.pii.engine import luhn_ok, mod97_ok
from proxy.guards.pii.operators import Operators, replace_spans
from proxy.guards.pii.vault import ConversationVaults, Vault, hold_point

OPS = Operators(Mask(char="*", keep_last=4), salt="s1")


def test_redact_names_the_entity() -> None:
    assert OPS.apply("redact", "PERSON", "Lena Andersson", Vault()) == "<PERSON>"


def test_mask_keeps_the_last_digits_and_separators() -> None:
    assert OPS.apply("mask", "CREDIT_CARD", "4887 7254 2767 3522", Vault()) == "**** **** **** 3522"
    assert OPS.apply("mask", "EMAIL_ADDRESS", "lena@mail.com", Vault()) == "****@****.com"


def test_hash_is_stable_salted_and_case_insensitive() -> None:
    a = OPS.apply("hash", "EMPLOYEE_ID", "EMP-204719", Vault())
    assert a == OPS.apply("hash", "EMPLOYEE_ID", "emp-204719", Vault())
    assert a.startswith("<EMPLOYEE_ID#") and "204719" not in a
    assert a != Operators(Mask(), salt="s2").apply("hash", "EMPLOYEE_ID", "EMP-204719", Vault())


def test_pseudonyms_are_consistent_and_reversible() -> None:
    v = Vault()
    assert OPS.apply("pseudonym", "PERSON", "Lena", v) == "<PERSON_1>"
    assert OPS.apply("pseudonym", "PERSON", "Bob", v) == "<PERSON_2>"
    assert OPS.apply("pseudonym", "PERSON", "lena ", v) == "<PERSON_1>"
    assert OPS.apply("pseudonym", "EMAIL_ADDRESS", "l@x.io", v) == "<EMAIL_ADDRESS_1>"
    assert v.restore("Hi <PERSON_1>, <PERSON_2> wrote to <EMAIL_ADDRESS_1>; <PERSON_9> stays") == (
        "Hi Lena, Bob wrote to l@x.io; <PERSON_9> stays"
    )
    assert "Lena" not in repr(v)


def test_block_and_allow_are_not_text_operators() -> None:
    with pytest.raises(ValueError):
        OPS.apply("block", "PERSON", "x", Vault())


def test_hold_point_never_cuts_a_placeholder() -> None:
    assert hold_point("Hello <PERS") == len("Hello ")
    assert hold_point("Hello <PERSON_1") == len("Hello ")
    assert hold_point("Hello <PERSON_1> and") == len("Hello <PERSON_1> and")
    assert hold_point("a < b") == len("a < b")


def test_conversation_vaults_keep_mapping_until_ttl() -> None:
    convs = ConversationVaults(ttl_s=3600)
    convs.get("c1").placeholder("PERSON", "Lena")
    assert convs.get("c1").placeholder("PERSON", "Bob") == "<PERSON_2>"
    assert convs.get("c2").placeholder("PERSON", "Bob") == "<PERSON_1>"
    assert "Lena" not in repr(convs)
    expired = ConversationVaults(ttl_s=1e-9)
    expired.get("c1").placeholder("PERSON", "Lena")
    assert len(expired.get("c1")) == 0


def test_replace_spans_and_validators() -> None:
    assert replace_spans("ab cd ef", [(6, 8, "Z"), (0, 2, "X")]) == "X cd Z"
    assert luhn_ok("4887725427673522") and not luhn_ok("4887725427673523")
    assert mod97_ok("GB10LORI20288482594042") and not mod97_ok("GB11LORI20288482594042")
