"""The `AsyncOpenAI` client that journey's OpenAI backend sends its requests through.

The SDK walks every request body against its parameter types before sending it,
recursing into each message once per message type it might be. For chat messages
that are already plain JSON (what AutoGen and journey build) the walk changes nothing,
yet it cost about 8 ms per request for a 12-turn debate, most of the orchestration's
CPU time per model call (docs/benchmarks.md). Here the messages travel in `extra_body`,
which the SDK sends as given, so that walk covers only the few scalar arguments.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions


class _MessagesAsGiven(AsyncCompletions):
    """`chat.completions` that sends `messages` without the SDK's type walk."""

    async def create(self, **params: Any) -> Any:  # type: ignore[override]
        messages = params.pop("messages")
        extra_body = params.pop("extra_body", None) or {}
        return await super().create(
            messages=[], extra_body={"messages": list(messages), **extra_body}, **params
        )


def openai_client(*, api_key: str, base_url: str, timeout: float) -> openai.AsyncOpenAI:
    """An SDK client with no retries of its own (journey retries, honouring
    Retry-After) whose chat completions send their messages as given."""
    client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
    # `completions` is a cached property: an instance attribute takes its place.
    client.chat.completions = _MessagesAsGiven(client)
    return client
