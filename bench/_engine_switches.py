"""A bench-only model backend: the embedded model with the engine's decode-path switches.

`continuous_batching`, `prefill_in_step` and `packed_weights` are `EngineConfig`
fields that choose among decode paths giving the same replies at different speeds:
not model spec options, since a user has no reason to turn one off. The benchmarks
compare those paths on a whole synthesis, which names its models by spec strings, so
`register()` adds a backend of their own, `bench-embedded`: the embedded backend plus
the three switches as options. Its client is the embedded backend's: every option that
is not a sampling default is an `EngineConfig` field, the switches included
(`TransformersChatCompletionClient.from_options`). For example
`bench-embedded?temperature=0&packed_weights=false`.
It is registered only in the benchmark's process; `journey models` never lists it.
"""

from __future__ import annotations

import dataclasses

from journey.agents.backends.registry import Option, backend, register_backend

NAME = "bench-embedded"

SWITCHES = (
    Option("continuous_batching", bool, "requests join and leave a running batch", "true"),
    Option("prefill_in_step", bool, "a joining prompt is fed in the batch's next step", "true"),
    Option("packed_weights", bool, "oneDNN over weights packed once at load", "true"),
)


def register() -> None:
    """Register `bench-embedded` (again, if it is already)."""
    embedded = backend("embedded")
    bench = dataclasses.replace(
        embedded,
        name=NAME,
        summary="the embedded model with the engine's decode-path switches (benchmarks)",
        syntax=NAME,
        options=(*embedded.options, *SWITCHES),
    )
    register_backend(bench, replace=True)
