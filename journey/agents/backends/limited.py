"""A client that lets at most N requests through to another client at once.

`journey synth --concurrency` bounds the sessions in flight; a role's endpoint may
take fewer requests than that (a rate-limited API, a small vLLM server, a critic on a
slower machine). `ConcurrencyLimitedClient` wraps the role's client and holds an
`asyncio.Semaphore` around every request; everything else is the wrapped client's.

Limits are per wrapper, not per model: when two roles share one client (the same spec
gives one `ClientPool` client, so one embedded model), each role wraps it with its own
limit and counts only its own requests. The shared model then sees at most
`policy + critic` requests at once, and neither role can starve the other of its share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends.base import (
    LabelScoringClient,
    LoadableClient,
    RecordingClient,
    RetryCounting,
    can_score_labels,
)
from journey.errors import ConfigError

__all__ = ["ConcurrencyLimitedClient", "limit_requests"]


class ConcurrencyLimitedClient(ChatCompletionClient):
    """Delegates to `inner`, with at most `limit` requests in flight through this wrapper.

    A request is `create`, a whole `create_stream` (held until the stream ends or is
    closed) or `score_labels`. Counting, usage and capabilities are the inner client's.
    Beyond the interface it forwards, by name, what jobs read from a client: `load`
    and `requests` where the inner client has them (so `isinstance` with
    `LoadableClient` or `RecordingClient` sees through the wrapper), and the retry
    counts (`RetryCounting`; none for an inner client that does not count them).

    Args:
        inner: The client to protect.
        limit: Requests allowed in flight at once (at least 1).

    Raises:
        ConfigError: `limit` is below 1.
    """

    load: Callable[[], Coroutine[Any, Any, None]]
    """The inner client's `load`; only where it has one (a `LoadableClient`)."""
    requests: list[list[LLMMessage]]
    """The inner client's recorded requests; only where it records them (scripted ones)."""

    def __init__(self, inner: ChatCompletionClient, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"a request limit must be at least 1, got {limit!r}")
        self._inner = inner
        self._limit = limit
        self._gate = asyncio.Semaphore(limit)
        if isinstance(inner, LoadableClient):
            self.load = inner.load
        if isinstance(inner, RecordingClient):
            self.requests = inner.requests

    def __repr__(self) -> str:
        return f"ConcurrencyLimitedClient({self._inner!r}, limit={self._limit})"

    @property
    def inner(self) -> ChatCompletionClient:
        """The wrapped client."""
        return self._inner

    @property
    def limit(self) -> int:
        """Requests allowed in flight at once."""
        return self._limit

    @property
    def retry_count(self) -> int:
        """The inner client's retries so far (`RetryCounting`); 0 if it counts none."""
        return self._inner.retry_count if isinstance(self._inner, RetryCounting) else 0

    @property
    def retries_by_cause(self) -> Mapping[str, int]:
        """The inner client's retries per cause (`RetryCounting`); empty if it counts none."""
        return self._inner.retries_by_cause if isinstance(self._inner, RetryCounting) else {}

    # --- requests, each through the gate --------------------------------------------------

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        async with self._gate:
            return await self._inner.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        async with self._gate:  # a stream occupies the endpoint until its last chunk
            stream = self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                await stream.aclose()

    @property
    def supports_label_scoring(self) -> bool:
        return can_score_labels(self._inner)

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        if not isinstance(self._inner, LabelScoringClient):
            raise ValueError(f"{type(self._inner).__name__} cannot score labels")
        async with self._gate:
            return await self._inner.score_labels(messages, labels, prefix=prefix)

    # --- the rest of the interface, delegated ---------------------------------------------

    async def close(self) -> None:
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self._inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return self._inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return self._inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._inner.capabilities  # pyright: ignore[reportDeprecated]

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info


def limit_requests(
    clients: Mapping[str, ChatCompletionClient], limits: Mapping[str, int | None]
) -> dict[str, ChatCompletionClient]:
    """Each role's client, wrapped in its own `ConcurrencyLimitedClient` where it has a limit.

    Roles without a limit (absent or None) keep their client as it is. Two roles that
    share a client get two wrappers over it, each counting its own role's requests.

    Args:
        clients: Client per role, e.g. `{"policy": ..., "critic": ...}`.
        limits: Requests in flight allowed per role; None means no limit.
    """
    out: dict[str, ChatCompletionClient] = {}
    for role, client in clients.items():
        limit = limits.get(role)
        out[role] = client if limit is None else ConcurrencyLimitedClient(client, limit)
    return out
