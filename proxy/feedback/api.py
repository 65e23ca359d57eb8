"""``POST /v1/feedback``: what a user did with an answer, linked to the request that produced it.

Body: ``{"request_id" | "response_id": ..., "event": ..., "edited_text"?, "reason"?}``.
The id is the proxy's request id (the ``x-guardrail-request-id`` response header; a
proxy-made answer's ``chatcmpl-<id>`` works too). Errors are OpenAI-shaped: 400 for a
malformed body, id or event; 404 for an id this proxy does not know for this key.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proxy.errors import ProxyError, bad_request, not_found
from proxy.feedback.records import FeedbackMetrics, RequestLog, add_event
from proxy.handlers.intake import authenticate, parse_json, read_body
from proxy.runtime import RUNTIME

log = logging.getLogger("guardrail.feedback")

Event = Literal["copied", "retried", "regenerated", "edited", "thumbs_up", "thumbs_down"]
EVENTS: tuple[str, ...] = Event.__args__  # type: ignore[attr-defined]
MAX_BODY = 256 * 1024
_ID = re.compile(r"^(?:chatcmpl-|cmpl-|resp_)?([0-9a-f]{32})$")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(default=None, max_length=128)
    response_id: str | None = Field(default=None, max_length=128)
    event: Event
    edited_text: str | None = Field(default=None, max_length=100_000)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackIn:
        if self.request_id is None and self.response_id is None:
            raise ValueError("give 'request_id' or 'response_id' (the x-guardrail-request-id response header)")
        if self.request_id and self.response_id and self.request_id != self.response_id:
            raise ValueError("'request_id' and 'response_id' name different requests; give one")
        if self.event == "edited" and not self.edited_text:
            raise ValueError("event 'edited' needs 'edited_text'")
        if self.edited_text is not None and self.event != "edited":
            raise ValueError("'edited_text' is only for event 'edited'")
        if self.reason is not None and self.event not in ("thumbs_up", "thumbs_down"):
            raise ValueError("'reason' is only for events 'thumbs_up' and 'thumbs_down'")
        return self

    @property
    def id(self) -> str:
        return str(self.request_id or self.response_id)


def _validation_error(exc: ValidationError) -> ProxyError:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    param = ".".join(loc) or None
    kind = first.get("type")
    if param == "event" and kind == "literal_error":
        return bad_request(
            f"Invalid value for 'event': must be one of {', '.join(EVENTS)}.", code="invalid_value", param="event"
        )
    if kind == "missing":
        return bad_request(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
    if kind == "extra_forbidden":
        return bad_request(f"Unrecognized request argument supplied: '{param}'.", code="unknown_parameter", param=param)
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return bad_request(
        f"Invalid feedback: {msg}." if not param else f"Invalid value for '{param}': {msg}.",
        code="invalid_value",
        param=param,
    )


def parse(raw: bytes) -> FeedbackIn:
    body = parse_json(raw, 8)
    try:
        return FeedbackIn.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def handler(requests: RequestLog, metrics: FeedbackMetrics) -> Handler:
    async def feedback(request: web.Request) -> web.Response:
        rt = request.app[RUNTIME]
        rules = rt.rules.current
        assert rules is not None
        principal = authenticate(request, rules.keyring)
        fb = parse(await read_body(request, MAX_BODY, rt.settings.client_timeout_s))
        param = "request_id" if fb.request_id else "response_id"
        m = _ID.match(fb.id)
        if m is None:
            raise bad_request(
                f"Invalid value for '{param}': expected the proxy's request id (32 hex characters, from the "
                "x-guardrail-request-id response header).",
                code="invalid_value",
                param=param,
            )
        rec = requests.get(m.group(1))
        if rec is None or rec.key_id != principal.key_id:  # another key's request is as unknown as none
            raise not_found(f"No recent request with id '{m.group(1)}' for this key.", code="request_not_found")
        add_event(rec, fb.event)
        metrics.count(rec, fb.event, "explicit")
        log.info(
            "feedback",
            extra={
                "request_id": rec.request_id,
                "event": fb.event,
                "source": "explicit",
                "key_id": rec.key_id,
                "model": rec.model,
                "route": rec.route,
                "approved_id": rec.approved_id,
                "reason_chars": len(fb.reason or ""),
                "edited_chars": len(fb.edited_text or ""),
            },
        )
        payload = {"object": "feedback", "request_id": rec.request_id, "event": fb.event, "recorded": True}
        return web.Response(body=json.dumps(payload), content_type="application/json")

    return feedback
