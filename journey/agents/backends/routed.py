"""One role, several endpoints: each request to the least-loaded healthy one.

A role given several model specs (`--policy A,B`, or `--policy @endpoints.txt`) gets
a `RoutedClient`. Each request goes to the healthy endpoint with the lowest load (its
requests in flight over its limit, where it has one; ties go to the endpoint asked
least). An endpoint whose request fails after its own retries is taken out of the
rotation and the request is sent to another, so a run loses nothing when one dies
mid-run and finishes on the others. After `probe_after` seconds a taken-out endpoint
gets one request again (a probe): an answer puts it back, a failure keeps it out for
another while. Only when every endpoint is out does a request fail, with the last
fault of each.

A fault of the request itself (HTTP 400, a prompt too long) would fail anywhere: it
is raised at once and takes no endpoint out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

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
    can_score_labels,
    retry_causes,
)
from journey.errors import ConfigError, ModelUnavailableError
from journey.protocols import LabelScoring

__all__ = ["Endpoint", "EndpointStats", "RoutedClient", "is_request_fault"]

_T = TypeVar("_T")

DEFAULT_PROBE_AFTER = 10.0
"""Seconds a failed endpoint stays out before it gets a probe."""


def is_request_fault(error: BaseException) -> bool:
    """Whether `error` is the request's fault (it would fail on any endpoint): an HTTP
    4xx other than 408, 409 and 429, however deep in the chain of causes."""
    seen: BaseException | None = error
    while seen is not None:
        status = getattr(seen, "status_code", None)  # openai.APIStatusError, unimported
        if isinstance(status, int):
            return 400 <= status < 500 and status not in (408, 409, 429)
        if isinstance(seen, ConfigError | ValueError | TypeError):
            return True
        seen = seen.__cause__
    return False


@dataclass
class Endpoint:
    """One endpoint of a role: its client, its limit and its books."""

    name: str
    """The endpoint's model spec, as logs and stats name it."""
    client: ChatCompletionClient
    limit: int | None = None
    """Requests in flight allowed at once; None: no limit of its own."""
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    out_since: float | None = None
    """When it was taken out of the rotation; None while it is in."""
    probing: bool = False
    last_error: str | None = None

    def load(self) -> float:
        return self.in_flight / self.limit if self.limit else float(self.in_flight)

    def has_room(self) -> bool:
        return self.limit is None or self.in_flight < self.limit


@dataclass(frozen=True)
class EndpointStats:
    """What one endpoint did: for the run's report and `journey stats`."""

    name: str
    requests: int
    failures: int
    healthy: bool
    last_error: str | None = None


@dataclass
class _Books:
    endpoints: list[Endpoint]
    probe_after: float
    clock: Callable[[], float]
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class RoutedClient(ChatCompletionClient):
    """Sends each request to one of `endpoints` (see the module docstring).

    Args:
        endpoints: The role's endpoints (at least one).
        probe_after: Seconds a failed endpoint stays out before it is probed.
        clock: The time source (tests pass a fake one).
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        probe_after: float = DEFAULT_PROBE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ConfigError("a routed client needs at least one endpoint")
        if any(e.limit is not None and e.limit < 1 for e in endpoints):
            raise ConfigError("an endpoint's request limit must be at least 1")
        self._books = _Books(list(endpoints), probe_after, clock)

    def __repr__(self) -> str:
        names = ", ".join(e.name for e in self._books.endpoints)
        return f"RoutedClient([{names}])"

    @property
    def endpoints(self) -> list[Endpoint]:
        return self._books.endpoints

    def stats(self) -> list[EndpointStats]:
        return [
            EndpointStats(e.name, e.requests, e.failures, e.out_since is None, e.last_error)
            for e in self._books.endpoints
        ]

    # --- routing --------------------------------------------------------------------------

    def _pick(self, tried: set[str]) -> Endpoint | None:
        """The endpoint the next request goes to (not one it failed on already); None
        when every candidate is busy."""
        books = self._books
        now = books.clock()
        candidates = [e for e in books.endpoints if e.name not in tried]
        for endpoint in candidates:  # a due probe first: it decides whether one comes back
            out = endpoint.out_since
            if out is not None and not endpoint.probing and now - out >= books.probe_after:
                endpoint.probing = True
                return endpoint
        healthy = [e for e in candidates if e.out_since is None and e.has_room()]
        if not healthy:
            return None
        return min(healthy, key=lambda e: (e.load(), e.requests))

    async def _acquire(self, tried: set[str]) -> Endpoint:
        """An endpoint for one request, waiting while every candidate is busy.

        Raises:
            ModelUnavailableError: every endpoint not tried yet is out of the rotation
                (a request does not wait for a probe that is not due).
        """
        books = self._books
        async with books.changed:
            while True:
                endpoint = self._pick(tried)
                if endpoint is not None:
                    endpoint.in_flight += 1
                    endpoint.requests += 1
                    return endpoint
                waiting = [e for e in books.endpoints if e.name not in tried]
                probing = any(e.probing for e in waiting)  # its answer may bring one back
                if all(e.out_since is not None for e in waiting) and not probing:
                    raise self._unavailable()
                await books.changed.wait()

    async def _release(self, endpoint: Endpoint, error: BaseException | None) -> None:
        books = self._books
        async with books.changed:
            endpoint.in_flight -= 1
            if error is None:
                endpoint.out_since, endpoint.probing = None, False
            else:
                endpoint.failures += 1
                endpoint.last_error = f"{type(error).__name__}: {error}"
                endpoint.out_since, endpoint.probing = books.clock(), False
            books.changed.notify_all()

    def _unavailable(self) -> ModelUnavailableError:
        faults = "; ".join(
            f"{e.name}: {e.last_error or 'out'}" for e in self._books.endpoints if e.last_error
        )
        count = len(self._books.endpoints)
        return ModelUnavailableError(f"all {count} endpoints failed ({faults or 'no answer'})")

    async def _route(self, call: Callable[[ChatCompletionClient], Awaitable[_T]]) -> _T:
        """`call` on one endpoint after another until one answers."""
        tried: set[str] = set()
        while True:
            endpoint = await self._acquire(tried)
            try:
                result = await call(endpoint.client)
            except Exception as error:
                if is_request_fault(error):
                    await self._release(endpoint, None)
                    raise
                await self._release(endpoint, error)
                tried.add(endpoint.name)
                continue
            await self._release(endpoint, None)
            return result

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
        return await self._route(
            lambda client: client.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )
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
        """Not streamed across endpoints: the reply is gathered from one (with fail-over),
        then yielded as one chunk and the result."""
        result = await self.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        if isinstance(result.content, str):
            yield result.content
        yield result

    @property
    def supports_label_scoring(self) -> bool:
        return all(can_score_labels(e.client) for e in self._books.endpoints)

    @property
    def label_scoring(self) -> LabelScoring:
        first = self._books.endpoints[0].client
        if not isinstance(first, LabelScoringClient):
            raise AttributeError(f"{type(first).__name__} cannot score labels")
        return first.label_scoring

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        async def score(client: ChatCompletionClient) -> dict[str, float]:
            if not isinstance(client, LabelScoringClient):
                raise ValueError(f"{type(client).__name__} cannot score labels")
            return await client.score_labels(messages, labels, prefix=prefix)

        return await self._route(score)

    # --- what jobs read -------------------------------------------------------------------

    async def load(self) -> None:
        """Load every endpoint that has a loading step (a local model, a vLLM server)."""
        for endpoint in self._books.endpoints:
            if isinstance(endpoint.client, LoadableClient):
                await endpoint.client.load()

    @property
    def retry_count(self) -> int:
        return sum(self.retries_by_cause.values())

    @property
    def retries_by_cause(self) -> Mapping[str, int]:
        total: dict[str, int] = {}
        for endpoint in self._books.endpoints:
            for cause, count in retry_causes(endpoint.client).items():
                total[cause] = total.get(cause, 0) + count
        return total

    # --- the rest of the interface --------------------------------------------------------

    async def close(self) -> None:
        for endpoint in self._books.endpoints:
            await endpoint.client.close()

    def _usage(self, of: Callable[[ChatCompletionClient], RequestUsage]) -> RequestUsage:
        usages = [of(e.client) for e in self._books.endpoints]
        return RequestUsage(
            prompt_tokens=sum(u.prompt_tokens for u in usages),
            completion_tokens=sum(u.completion_tokens for u in usages),
        )

    def actual_usage(self) -> RequestUsage:
        return self._usage(lambda client: client.actual_usage())

    def total_usage(self) -> RequestUsage:
        return self._usage(lambda client: client.total_usage())

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return self._books.endpoints[0].client.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return self._books.endpoints[0].client.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._books.endpoints[0].client.capabilities  # pyright: ignore[reportDeprecated]

    @property
    def model_info(self) -> ModelInfo:
        return self._books.endpoints[0].client.model_info
