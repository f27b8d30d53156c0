"""Token usage helpers shared by the agents."""

from __future__ import annotations

from autogen_core.models import RequestUsage

from journey.protocols import TokenUsage


def to_usage(usage: RequestUsage) -> TokenUsage:
    return TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
