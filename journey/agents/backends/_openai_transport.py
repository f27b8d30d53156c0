"""The `AsyncOpenAI` client that journey's OpenAI backend sends its requests through.

The SDK walks every request body against its parameter types before sending it,
recursing into each message once per message type it might be. For chat messages
that are already plain JSON (what AutoGen and journey build) the walk changes nothing,
yet it cost about 8 ms per request for a 12-turn debate, most of the orchestration's
CPU time per model call (docs/benchmarks.md). Here the messages travel in `extra_body`,
which the SDK sends as given, so that walk covers only the few scalar arguments.

Replies are read as servers send them. A reasoning model's thoughts come beside the
answer under one of two names: `reasoning` (vLLM since its reasoning parsers renamed the
field, and OpenRouter) or `reasoning_content` (older vLLM, DeepSeek's API, llama.cpp's
`--reasoning-format deepseek`). AutoGen reads only `reasoning_content`, so a whole reply
gets its thoughts under that name too. A streamed reply's thoughts are taken out of its
chunks (AutoGen would stream them as `<think>`-tagged text and then strip the tags with
`str.lstrip`, eating the thoughts' first letters) and handed to the caller that asked
for them with `collect_stream_thoughts`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["REASONING_FIELDS", "collect_stream_thoughts", "openai_client", "reasoning_of"]

REASONING_FIELDS = ("reasoning", "reasoning_content")
"""Where servers put a reply's thoughts, in the order they are looked for."""

ResponseHook = Callable[[Any], Awaitable[None]]
"""A response hook of the SDK's HTTP client: called with each response before its body
is read."""

_stream_thoughts: ContextVar[list[str] | None] = ContextVar("_stream_thoughts", default=None)


def reasoning_of(fields: Mapping[str, Any] | None) -> str | None:
    """The thoughts among a message's or delta's extra fields, under either name."""
    if not fields:
        return None
    for name in REASONING_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            return value
    return None


@contextmanager
def collect_stream_thoughts() -> Iterator[list[str]]:
    """Streams opened inside the block put their thoughts in the yielded list, in order.

    A stream keeps the list it was opened with, so only the opening (the first chunk)
    needs to happen inside the block. Streams opened outside any block keep their
    thoughts in the chunks.
    """
    thoughts: list[str] = []
    token = _stream_thoughts.set(thoughts)
    try:
        yield thoughts
    finally:
        _stream_thoughts.reset(token)


class _ThoughtsApart:
    """A chat-completion stream whose chunks carry the answer only; the thoughts go to
    a list. Iterated with `anext`, as AutoGen does."""

    def __init__(self, stream: openai.AsyncStream[ChatCompletionChunk], sink: list[str]) -> None:
        self._stream = stream
        self._sink = sink
        self.response = stream.response

    def __aiter__(self) -> _ThoughtsApart:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        chunk = await self._stream.__anext__()
        for choice in chunk.choices[:1]:  # AutoGen reads the first choice only
            extra = choice.delta.model_extra
            text = reasoning_of(extra)
            if extra is not None:
                for name in REASONING_FIELDS:
                    extra.pop(name, None)
            if text:
                self._sink.append(text)
        return chunk

    async def close(self) -> None:
        await self._stream.close()


class _MessagesAsGiven(AsyncCompletions):
    """`chat.completions` that sends `messages` without the SDK's type walk, and names
    a reply's thoughts as AutoGen reads them."""

    async def create(self, **params: Any) -> Any:
        messages = params.pop("messages")
        extra_body = params.pop("extra_body", None) or {}
        result = await super().create(
            messages=[], extra_body={"messages": list(messages), **extra_body}, **params
        )
        if isinstance(result, ChatCompletion):
            for choice in result.choices:
                extra = choice.message.model_extra
                text = reasoning_of(extra)
                if extra is not None and text is not None:
                    extra["reasoning_content"] = text
        elif isinstance(result, openai.AsyncStream):
            sink = _stream_thoughts.get()
            if sink is not None:
                return _ThoughtsApart(result, sink)
        return result


def openai_client(
    *,
    api_key: str,
    base_url: str,
    timeout: float,
    http_client: openai.DefaultAsyncHttpxClient | None = None,
    on_response: ResponseHook | None = None,
) -> openai.AsyncOpenAI:
    """An SDK client with no retries of its own (journey retries, honouring
    Retry-After) whose chat completions send their messages as given; `http_client`
    sends its requests when given (the SDK's own otherwise); `on_response` sees every
    response's headers before its body (the server's rate-limit headers)."""
    if on_response is not None:
        if http_client is None:
            http_client = openai.DefaultAsyncHttpxClient()
        hooks = http_client.event_hooks
        http_client.event_hooks = {**hooks, "response": [*hooks.get("response", []), on_response]}
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=http_client,
    )
    # `completions` is a cached property: an instance attribute takes its place. (The SDK
    # types its cached properties as read-only properties.)
    client.chat.completions = _MessagesAsGiven(client)  # type: ignore[misc]
    return client
