"""The `llama:GGUF` backend's record: llama.cpp's `llama-server`, started by journey.

    llama:embedded                               the embedded model's GGUF file
    llama:~/models/qwen2.5-7b-q4_k_m.gguf?parallel=4&temperature=0.7

The record lives here, and `builtin_backends` registers it, because that module is near
its size limit; the client (`llama_client`) is imported only when a spec is built, so
parsing a spec stays light. The options the server backends share come from
`builtin_backends` when the record is made, which is after they exist there: the two
modules do not import each other at load.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from journey.agents.backends.registry import Backend, Option, Target
from journey.engine.model_store import EMBEDDED_GGUF_NAME, EMBEDDED_WHEEL_REQUIREMENT

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from journey.agents.backends.spec import ModelSpec

__all__ = ["EMBEDDED_GGUF", "LLAMA_SERVER_OPTIONS", "gguf_fingerprint", "llama_backend"]

EMBEDDED_GGUF = "embedded"
"""The target that names the embedded model's GGUF file."""

LLAMA_SERVER_OPTIONS = (
    Option(
        "parallel",
        int,
        "llama-server's --parallel: slots, requests decoded together",
        "8",
        minimum=1,
        affects_replies=False,
    ),
    Option(
        "ctx_size",
        int,
        "llama-server's --ctx-size: context tokens over all slots; 0: the model's own",
        "2048 per slot",
        minimum=0,
    ),
    Option(
        "threads", int, "llama-server's --threads", "all cores", minimum=1, affects_replies=False
    ),
    Option(
        "binary",
        str,
        "the llama-server executable",
        "$JOURNEY_LLAMA_SERVER, else llama-server on PATH",
        affects_replies=False,
    ),
    Option(
        "start_timeout",
        float,
        "seconds the server may take to be ready",
        "300",
        affects_replies=False,
    ),
)
"""The options only this backend takes: the server's, not the client's."""


def llama_backend() -> Backend:
    """The `llama` backend, with the options it shares with the other server backends."""
    from journey.agents.backends.builtin_backends import (
        ENDPOINT_CONCURRENCY,
        LOGPROBS,
        MAX_RETRIES,
        MAX_TOKENS,
        PRICES,
        RATE_LIMITS,
        SEED,
        TEMPERATURE,
        TIMEOUT,
        TOP_P,
    )

    shared = (MAX_TOKENS, TEMPERATURE, TOP_P, SEED, replace(TIMEOUT, default="600"))
    return Backend(
        "llama",
        "llama.cpp's llama-server, started by journey on a free local port (GGUF: a file, "
        "or embedded)",
        "llama:GGUF",
        (
            *shared,
            MAX_RETRIES,
            LOGPROBS,
            ENDPOINT_CONCURRENCY,
            *PRICES,
            *RATE_LIMITS,
            *LLAMA_SERVER_OPTIONS,
        ),
        parse=_parse,
        create=_create,
        fingerprint=gguf_fingerprint,
        seeded_by_default=True,  # llama-server takes a seed with each request
    )


def gguf_fingerprint(spec: ModelSpec) -> str | None:
    """What tells apart the files one `llama:` target names over time: the embedded
    model's release (its file is checked against it), else the file's size and
    modification time, hashed; None when the file is not there."""
    if spec.target == EMBEDDED_GGUF:
        return f"{EMBEDDED_WHEEL_REQUIREMENT}/{EMBEDDED_GGUF_NAME}"
    try:
        stat = Path(spec.target).expanduser().stat()
    except OSError:
        return None
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _parse(rest: str, spec: str) -> Target | None:
    """`llama:GGUF` with any non-empty GGUF; whether the file is there is `create`'s check."""
    return (rest, None) if rest else None


def _create(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.llama_client import llama_client_from_spec

    return llama_client_from_spec(spec.target, **spec.options)
