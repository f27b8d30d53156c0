"""A client that answers from a response cache before it asks its model.

Every request is keyed by what shapes its answer: the role's model identity (the
backend, model and the options that change replies, never secrets or endpoints, so
several servers of one model share a cache), the messages, tools, JSON mode and extra
arguments, the kind of request (a reply or label scores) and a **sample index**: the
n-th identical request of this client gets index n, so beam children and repeated
samples stay n different answers instead of one answer n times. A rerun asks the
same questions in the same order and gets the same answers back without a model call.

What is stored: whole responses with their usage. Not stored: errors (nothing comes
back to store), and replies cut off by the token limit (`finish_reason == "length"`)
unless `store_truncated` is on, so a rerun with a larger limit asks again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends.delegating import DelegatingClient
from journey.agents.backends.request_keys import SampleKeys, create_request
from journey.agents.backends.response_store import CachedResponse, ResponseStore
from journey.errors import ConfigError

__all__ = ["CacheMode", "CacheStats", "CachedClient"]


class CacheMode(StrEnum):
    OFF = "off"
    READ = "read"
    """Answer from the cache where it can; store nothing new."""
    WRITE = "write"
    """Always ask the model; store what it answers."""
    READWRITE = "readwrite"

    @classmethod
    def parse(cls, value: str) -> CacheMode:
        try:
            return cls(value)
        except ValueError:
            modes = ", ".join(m.value for m in cls)
            raise ConfigError(f"cache mode must be one of {modes}, got {value!r}") from None

    @property
    def reads(self) -> bool:
        return self in (CacheMode.READ, CacheMode.READWRITE)

    @property
    def writes(self) -> bool:
        return self in (CacheMode.WRITE, CacheMode.READWRITE)


@dataclass
class CacheStats:
    """What one client's cache did: hits, misses, stored responses, tokens saved."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    prompt_tokens_saved: int = 0
    completion_tokens_saved: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class CachedClient(DelegatingClient):
    """Answers `inner`'s requests from `store` where it can, and stores what `inner` says.

    Args:
        inner: The role's client.
        store: The response store (shared by every role of a run).
        identity: What the model is, as far as answers go (see the module docstring).
        mode: Whether to read the cache, write it, or both.
        store_truncated: Store replies cut off by the token limit too.
    """

    def __init__(
        self,
        inner: ChatCompletionClient,
        store: ResponseStore,
        *,
        identity: str,
        mode: CacheMode = CacheMode.READWRITE,
        store_truncated: bool = False,
    ) -> None:
        if mode is CacheMode.OFF:
            raise ConfigError("a CachedClient needs a cache mode other than off")
        super().__init__(inner)
        self._store = store
        self._identity = identity
        self._mode = mode
        self._store_truncated = store_truncated
        self._keys = SampleKeys()
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"CachedClient({self.inner!r}, identity={self._identity!r}, mode={self._mode})"

    def _key(self, kind: str, request: Mapping[str, Any]) -> str:
        """The request's key, with the next sample index for identical requests."""
        return self._keys.key({"identity": self._identity, "kind": kind, **request})

    def _lookup(self, key: str) -> CachedResponse | None:
        if not self._mode.reads:
            return None
        found = self._store.get(key)
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        self.stats.prompt_tokens_saved += found.prompt_tokens
        self.stats.completion_tokens_saved += found.completion_tokens
        return found

    def _keep(self, key: str, kind: str, value: str, prompt: int, completion: int) -> None:
        if self._mode.writes:
            self._store.put(key, CachedResponse(kind, value, prompt, completion))
            self.stats.stored += 1

    def _keep_result(self, key: str, result: CreateResult) -> None:
        if result.finish_reason == "length" and not self._store_truncated:
            return
        usage = result.usage
        self._keep(
            key,
            "create",
            result.model_dump_json(),
            usage.prompt_tokens,
            usage.completion_tokens,
        )

    def _create_key(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> str:
        return self._key(
            "create", create_request(messages, tools, tool_choice, json_output, extra_create_args)
        )

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
        key = self._create_key(messages, tools, tool_choice, json_output, extra_create_args)
        if (found := self._lookup(key)) is not None:
            return CreateResult.model_validate_json(found.value).model_copy(update={"cached": True})
        result = await super().create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        self._keep_result(key, result)
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
        key = self._create_key(messages, tools, tool_choice, json_output, extra_create_args)
        if (found := self._lookup(key)) is not None:
            result = CreateResult.model_validate_json(found.value)
            if isinstance(result.content, str):
                yield result.content
            yield result.model_copy(update={"cached": True})
            return
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
                if isinstance(chunk, CreateResult):
                    self._keep_result(key, chunk)
                yield chunk
        finally:
            await stream.aclose()

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        key = self._key(
            "score_labels",
            {
                "messages": [m.model_dump(mode="json") for m in messages],
                "labels": list(labels),
                "prefix": prefix,
            },
        )
        if (found := self._lookup(key)) is not None:
            scores: dict[str, float] = CachedScores.model_validate_json(found.value).scores
            return scores
        scores = await super().score_labels(messages, labels, prefix=prefix)
        self._keep(key, "score_labels", CachedScores(scores=scores).model_dump_json(), 0, 0)
        return scores


class CachedScores(BaseModel):
    """Label scores as the cache stores them."""

    scores: dict[str, float]
