"""A client that wraps another: the base of the wrappers a run puts around a role's
client (a concurrency limit, a response cache).

`DelegatingClient` hands every request and every question to the inner client. A
wrapper that only gates or paces requests overrides two hooks: `_request`, held around
each request the inner client serves (a `create`, a whole stream, a `score_labels`),
and `_answered`, told each answered request; one that adds an argument (a seed)
overrides `_create_args`. One that may answer instead of the inner client (a cache)
overrides `create`, `create_stream` and `score_labels` themselves.

Beyond the AutoGen interface it forwards, by name, what jobs read from a client:
`load` and `requests` where the inner client has them (so `isinstance` with
`LoadableClient` or `RecordingClient` sees through the wrapper), and the retry counts
(`RetryCounting`; none for an inner client that counts none).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
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
from journey.protocols import LabelScoring

__all__ = ["DelegatingClient"]


class DelegatingClient(ChatCompletionClient):
    """Everything `inner` does, unchanged until a subclass overrides it."""

    load: Callable[[], Coroutine[Any, Any, None]]
    """The inner client's `load`; only where it has one (a `LoadableClient`)."""
    requests: list[list[LLMMessage]]
    """The inner client's recorded requests; only where it records them (scripted ones)."""

    def __init__(self, inner: ChatCompletionClient) -> None:
        self._inner = inner
        if isinstance(inner, LoadableClient):
            self.load = inner.load
        if isinstance(inner, RecordingClient):
            self.requests = inner.requests

    @property
    def inner(self) -> ChatCompletionClient:
        """The wrapped client."""
        return self._inner

    @property
    def retry_count(self) -> int:
        """The inner client's retries so far (`RetryCounting`); 0 if it counts none."""
        return self._inner.retry_count if isinstance(self._inner, RetryCounting) else 0

    @property
    def retries_by_cause(self) -> Mapping[str, int]:
        """The inner client's retries per cause (`RetryCounting`); empty if it counts none."""
        return self._inner.retries_by_cause if isinstance(self._inner, RetryCounting) else {}

    # --- hooks ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _request(self) -> AsyncIterator[None]:
        """Held around each request the inner client serves; a gate or a pace overrides it."""
        yield

    def _answered(self, result: CreateResult) -> None:
        """Told each answered request (a stream's once, with its final result)."""

    def _create_args(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """The extra arguments the inner client gets for a request (a `create` or a
        stream); a wrapper that adds one (a seed) overrides it."""
        return extra_create_args

    # --- requests -------------------------------------------------------------------------

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
        args = self._create_args(messages, tools, tool_choice, json_output, extra_create_args)
        async with self._request():
            result = await self._inner.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=args,
                cancellation_token=cancellation_token,
            )
        self._answered(result)
        return result

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
        args = self._create_args(messages, tools, tool_choice, json_output, extra_create_args)
        async with self._request():  # a stream occupies the endpoint until its last chunk
            stream = self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=args,
                cancellation_token=cancellation_token,
            )
            try:
                async for chunk in stream:
                    if isinstance(chunk, CreateResult):
                        self._answered(chunk)
                    yield chunk
            finally:
                await stream.aclose()

    @property
    def supports_label_scoring(self) -> bool:
        return can_score_labels(self._inner)

    @property
    def label_scoring(self) -> LabelScoring:
        if not isinstance(self._inner, LabelScoringClient):
            # An AttributeError, so that `isinstance(wrapper, LabelScoringClient)` is
            # False exactly where it is for the inner client.
            raise AttributeError(f"{type(self._inner).__name__} cannot score labels")
        return self._inner.label_scoring

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        scorer = self._inner_scorer()  # refused before the request is let through
        async with self._request():
            return await scorer.score_labels(messages, labels, prefix=prefix)

    def _inner_scorer(self) -> LabelScoringClient:
        if not isinstance(self._inner, LabelScoringClient):
            raise ValueError(f"{type(self._inner).__name__} cannot score labels")
        return self._inner

    # --- the rest of the interface --------------------------------------------------------

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
