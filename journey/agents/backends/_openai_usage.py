"""Token counts and usage totals of `OpenAICompatibleClient`.

Usage is what the server reported: AutoGen's totals for the chat requests it sent,
plus the requests the client sends itself (label scoring, `/v1/completions`). Prompt
tokens are counted without a tokenizer and without the network (`_prompt_tokens`):
the server's own count for recently sent prompts, else a local estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core.models import LLMMessage, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import BaseOpenAIChatCompletionClient, _model_info

from journey.agents.backends._prompt_tokens import PromptTokenCounts, estimate_prompt_tokens

__all__ = ["OpenAIUsage"]


class OpenAIUsage:
    """Usage and token counts; a mixin of `OpenAICompatibleClient`, which sets the
    attributes below and records what the server counts for each prompt it sends."""

    _model: str
    _inner: BaseOpenAIChatCompletionClient
    _own_usage: RequestUsage
    """Requests sent here rather than through AutoGen: label scoring, completions."""
    _prompt_tokens: PromptTokenCounts

    def actual_usage(self) -> RequestUsage:
        return _add_usage(self._inner.actual_usage(), self._own_usage)

    def total_usage(self) -> RequestUsage:
        return _add_usage(self._inner.total_usage(), self._own_usage)

    def count_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        """Prompt tokens of `messages`, never from a tokenizer or the network.

        The server's own count (its reported `usage.prompt_tokens`) when these exact
        messages were sent recently (the last 1024 prompts, label scorings included);
        otherwise a local estimate, one token per 4 characters plus 4 per message.
        Tools are not counted.
        """
        known = self._prompt_tokens.get(messages)
        return known if known is not None else estimate_prompt_tokens(messages)

    def remaining_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        """The model's context length from AutoGen's table, which knows OpenAI models only
        (KeyError otherwise), minus `count_tokens(messages)`."""
        return _model_info.get_token_limit(self._model) - self.count_tokens(messages)

    def _count_own(self, messages: Sequence[LLMMessage], usage: RequestUsage) -> None:
        """Add a request sent outside AutoGen to the usage totals and the known counts."""
        self._own_usage = _add_usage(self._own_usage, usage)
        self._prompt_tokens.record(messages, usage.prompt_tokens)


def _add_usage(a: RequestUsage, b: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )
