"""A client that gives each sampled request a seed of its own, derived from the request.

Without it, a local model draws each request's seed from its worker's stream in the
order requests arrive, and a server given a `seed` option uses that one seed for every
request: with concurrent sessions a rerun writes other sessions, and on vLLM the beam
children of one step, identical requests under one seed, come back identical.

`SeededClient` adds `seed` to each sampled request that has none: a hash of the role's
model (its identity less any weights fingerprint, so a copied model samples alike; it
holds the spec's own `seed`), the request's content and its sample index
(`request_keys`), so identical requests get different seeds, in the order one session
asks them, and a rerun gets the same seed for the same request whatever order other
sessions' requests arrive in. A request that brings its own seed keeps it; a greedy one
(temperature 0, asked or the spec's) gets none, since a seed would change nothing.

It goes outside the response cache, whose keys then hold the seed (so a cache written
before seeds per request misses once for sampled requests): a resumed run counts the
requests its cache answers too, so its new requests get the seeds a run without the
interruption would have given them. A session restored from its event log without the
cache does not ask again what it logged, so a question it asks once more (a beam
re-expanding an unchanged path) may draw a sample it drew before the interruption; the
session's repeat checks then ask again, with the next seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from autogen_core.models import ChatCompletionClient, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from journey.agents.backends import registry
from journey.agents.backends.delegating import DelegatingClient
from journey.agents.backends.reply_identity import reply_identity
from journey.agents.backends.request_keys import SampleKeys, create_request
from journey.agents.backends.spec import ModelSpec

__all__ = ["SEED_ARGUMENT", "SEED_BITS", "SeededClient", "seeded", "seeds_requests"]

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


def seeded(client: ChatCompletionClient, specs: Sequence[ModelSpec]) -> ChatCompletionClient:
    """`client` as a role on these endpoints asks it: each sampled request seeded
    (`SeededClient`) where `seeds_requests(specs)`, else `client` itself."""
    if not seeds_requests(specs):
        return client
    identity = " | ".join(sorted({reply_identity(spec, fingerprint=False) for spec in specs}))
    greedy = all(spec.options.get("temperature") == 0 for spec in specs)
    return SeededClient(client, identity=identity, greedy_default=greedy)


class SeededClient(DelegatingClient):
    """`inner`, with a seed derived from each request that brings none.

    Args:
        inner: The role's client (its cache, meter and model).
        identity: The role's model, as `seed_identity` names it.
        greedy_default: The role's spec decodes greedily (temperature 0): a request that
            sets no temperature of its own gets no seed.
    """

    def __init__(
        self, inner: ChatCompletionClient, *, identity: str, greedy_default: bool = False
    ) -> None:
        super().__init__(inner)
        self._identity = identity
        self._greedy_default = greedy_default
        self._keys = SampleKeys()

    def __repr__(self) -> str:
        return f"SeededClient({self.inner!r}, identity={self._identity!r})"

    def _create_args(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        temperature = extra_create_args.get("temperature")
        greedy = self._greedy_default if temperature is None else float(temperature) == 0
        if greedy or SEED_ARGUMENT in extra_create_args:
            return extra_create_args
        request = create_request(messages, tools, tool_choice, json_output, extra_create_args)
        key = self._keys.key({"identity": self._identity, **request})
        return {**extra_create_args, SEED_ARGUMENT: int(key, 16) % 2**SEED_BITS}
