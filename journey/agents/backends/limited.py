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
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends.delegating import DelegatingClient
from journey.errors import ConfigError

__all__ = ["ConcurrencyLimitedClient", "limit_requests"]


class ConcurrencyLimitedClient(DelegatingClient):
    """Delegates to `inner`, with at most `limit` requests in flight through this wrapper.

    A request is `create`, a whole `create_stream` (held until the stream ends or is
    closed) or `score_labels`. Everything else is the inner client's (`DelegatingClient`).

    Args:
        inner: The client to protect.
        limit: Requests allowed in flight at once (at least 1).

    Raises:
        ConfigError: `limit` is below 1.
    """

    def __init__(self, inner: ChatCompletionClient, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"a request limit must be at least 1, got {limit!r}")
        super().__init__(inner)
        self._limit = limit
        self._gate = asyncio.Semaphore(limit)

    def __repr__(self) -> str:
        return f"ConcurrencyLimitedClient({self.inner!r}, limit={self._limit})"

    @property
    def limit(self) -> int:
        """Requests allowed in flight at once."""
        return self._limit

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
            return await super().create(
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
            stream = super().create_stream(
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

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        scorer = self._inner_scorer()
        async with self._gate:
            return await scorer.score_labels(messages, labels, prefix=prefix)


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
