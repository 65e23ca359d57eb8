"""The ``conversation_limits`` request guard (``rules/policy.yaml``, ``conversation:``).

Per key, team, or the global default (``limits.conversation``): at most ``max_messages``
messages (input items), ``max_prompt_tokens`` estimated prompt tokens, ``max_documents``
tool results and file parts; over any of them → 400 with an OpenAI-shaped error. The
request's ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens`` is clamped
to ``max_tokens`` (and added when ``limits.inject_max_tokens`` is on), as a Rewrite.
"""

from __future__ import annotations

from typing import Any

from proxy.context import RequestContext
from proxy.limits import tokens
from proxy.limits.estimate import prompt_estimate
from proxy.limits.policy import LimitsPolicy
from proxy.pipeline.guard import BuildContext
from proxy.policy.keys import load_policy
from proxy.verdicts import Allow, Block, Hit, Rewrite, Verdict


class ConversationGuard:
    name = "conversation_limits"

    def __init__(self, policy: LimitsPolicy, services: Any = None) -> None:
        self.policy = policy
        self.services = services

    def _block(self, rule: str, message: str, code: str) -> Block:
        return Block(self.name, message, hits=(Hit(f"conversation.{rule}", layer="limits"),), status=400, code=code)

    async def check(self, ctx: RequestContext) -> Verdict:
        kl = self.policy.for_key(ctx.principal.key_id, ctx.principal.team)
        conv = kl.conversation
        if conv.max_messages is not None:
            n = tokens.message_count(ctx.route, ctx.body)
            if n > conv.max_messages:
                return self._block(
                    "max_messages",
                    f"This request has {n} messages; the limit for your key is {conv.max_messages}.",
                    "too_many_messages",
                )
        if conv.max_documents is not None:
            n = tokens.document_count(ctx.route, ctx.body)
            if n > conv.max_documents:
                return self._block(
                    "max_documents",
                    f"This request has {n} tool results or documents; the limit for your key is {conv.max_documents}.",
                    "too_many_documents",
                )
        if conv.max_prompt_tokens is not None:
            n = await prompt_estimate(ctx, getattr(self.services, "cpu", None))
            if n > conv.max_prompt_tokens:
                return self._block(
                    "max_prompt_tokens",
                    f"This request's prompt is about {n} tokens; the limit for your key is "
                    f"{conv.max_prompt_tokens}. Please shorten the conversation.",
                    "context_length_exceeded",
                )
        body = tokens.clamped(ctx.route, ctx.body, conv.max_tokens, self.policy.settings.inject_max_tokens)
        if body is not None:
            return Rewrite(
                self.name,
                body=body,
                hits=(Hit("conversation.max_tokens", layer="limits", detail=str(conv.max_tokens)),),
                message=f"output bound clamped to {conv.max_tokens}",
            )
        return Allow(self.name)


def build(bctx: BuildContext) -> ConversationGuard:
    return ConversationGuard(LimitsPolicy.compile(load_policy(bctx.rules_dir)), bctx.services)
