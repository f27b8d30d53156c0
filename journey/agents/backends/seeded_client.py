"""A client that gives each sampled request a seed of its own, derived from the request.

Without it, a local model draws each request's seed from its worker's stream in the
order requests arrive, and a server given a `seed` option uses that one seed for every
request: with concurrent sessions a rerun writes other sessions, and on vLLM the beam
children of one step, identical requests under one seed, come back identical.

`SeededClient` adds `seed` to each request that has none: a hash of the role's model
identity (which holds the spec's own `seed`), the request's content and its sample
index (`request_keys`), so identical requests get different seeds, in the order one
session asks them, and a rerun gets the same seed for the same request whatever order
other sessions' requests arrive in. A request that brings its own seed keeps it.

It goes outside the response cache, whose keys then hold the seed: a resumed run
counts the requests its cache answers too, so its new requests get the seeds a run
without the interruption would have given them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends import registry
from journey.agents.backends.delegating import DelegatingClient
from journey.agents.backends.request_keys import SampleKeys, create_request
from journey.agents.backends.spec import ModelSpec

__all__ = ["SEED_ARGUMENT", "SEED_BITS", "SeededClient", "seeds_requests"]

SEED_ARGUMENT = "seed"
"""The request argument (and spec option) that seeds sampling."""
SEED_BITS = 31
"""Derived seeds are below 2**31: every server we speak to takes a signed 32-bit seed."""


def seeds_requests(specs: Sequence[ModelSpec]) -> bool:
    """Whether a role on these endpoints gets a seed per request: every backend takes a
    seed, and each spec gives one or its backend samples from a seed by default."""
    if not specs:
        return False
    for spec in specs:
        backend = registry.backend(spec.backend)
        if not backend.takes(SEED_ARGUMENT):
            return False
        if SEED_ARGUMENT not in spec.options and not backend.seeded_by_default:
            return False
    return True


class SeededClient(DelegatingClient):
    """`inner`, with a seed derived from each request that brings none.

    Args:
        inner: The role's client (its cache, meter and model).
        identity: The role's model identity, as the response cache names it.
    """

    def __init__(self, inner: ChatCompletionClient, *, identity: str) -> None:
        super().__init__(inner)
        self._identity = identity
        self._keys = SampleKeys()

    def __repr__(self) -> str:
        return f"SeededClient({self.inner!r}, identity={self._identity!r})"

    def _seeded(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        if SEED_ARGUMENT in extra_create_args:
            return extra_create_args
        request = create_request(messages, tools, tool_choice, json_output, extra_create_args)
        key = self._keys.key({"identity": self._identity, **request})
        return {**extra_create_args, SEED_ARGUMENT: int(key, 16) % 2**SEED_BITS}

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
        return await super().create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=self._seeded(
                messages, tools, tool_choice, json_output, extra_create_args
            ),
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
        stream = super().create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=self._seeded(
                messages, tools, tool_choice, json_output, extra_create_args
            ),
            cancellation_token=cancellation_token,
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()
