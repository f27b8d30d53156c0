"""Model spec strings: one string per role names the backend and its options.

    embedded                          the embedded SmolLM2-135M-Instruct (the default)
    hf:PATH  or an existing directory  a local Hugging Face model (e.g. a trained output)
    openai:MODEL                      an OpenAI-compatible server at $OPENAI_BASE_URL
    openai:MODEL@http://host:8000/v1  ... at that base URL (a vLLM or llama.cpp server)
    vllm:MODEL                        a vLLM server that journey starts on a free local port
                                      and stops when done; MODEL is a Hub id or a directory
    replay:FILE.json                  replies from a JSON list (or JSONL) of strings
    function:MODULE:NAME              replies from a Python function of the messages
                                      (sync or async), e.g. a rule-based critic or a test fake

Options follow a `?`, as `key=value` pairs joined by `&`, for example
`openai:Qwen2.5-7B@http://localhost:8000/v1?temperature=0.7&logprobs=true`.

Every backend takes `price_in=X` and `price_out=Y`: USD per million prompt and
completion tokens, for cost reports and budgets (read by the run, not the client;
without them a --prices file, then journey's dated table of common API models).

Every generating backend (embedded, hf, openai, vllm, llama) takes `max_tokens=N` (N >= 1):
the most tokens one reply of this role may have, read by the agent that uses the
model (`policy` steps, `critic` verdicts); the client itself is the same with or
without it, so roles that differ only in `max_tokens` share one model.

OpenAI-compatible servers (`openai:`):
    logprobs=true        the server returns log-probs: the critic can score its labels
    rpm=N, tpm=N         at most N requests, or N prompt + completion tokens, per minute
                         to this endpoint (a sliding window); the server's own
                         x-ratelimit-* headers are obeyed with or without them
    reasoning=true       an OpenAI reasoning model: `max_completion_tokens` is sent for
                         `max_tokens`, and temperature, top_p, stop and logprobs, which
                         it refuses, are not sent; on by default for o1, o3, o4-mini
                         and the gpt-5 family (`reasoning=false` turns it off)
    api=completions      a base model: `/v1/completions` with the chat written as plain
                         text (journey/engine/prompts/plain.yaml); default api=chat
    timeout, max_retries, key_env (the variable holding the API key), temperature,
    top_p, seed

vLLM cannot share journey's environment, so `vllm:` starts it from another:
the interpreter in `python=`, else in $JOURNEY_VLLM_PYTHON, else the `vllm`
executable on PATH, for example
    vllm:Qwen/Qwen2.5-7B-Instruct?python=/opt/vllm/bin/python&dtype=bfloat16
Server options: python, tensor_parallel_size, gpu_memory_utilization,
max_model_len, dtype, start_timeout (seconds to become ready, default 900);
more server arguments go in $JOURNEY_VLLM_ARGS (e.g. "--enforce-eager").
Roles on one model with the same server options share one server.

Each backend, its syntax and its options are one record in
`journey.agents.backends.registry` (the built-in ones in `builtin_backends`);
the list below is made from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from autogen_core.models import ChatCompletionClient

from journey.agents.backends import registry
from journey.agents.backends.builtin_backends import (
    OPENAI_APIS,
    load_replies,
    load_reply_function,
)
from journey.agents.backends.rate_limited import RateLimitedClient, RateWindow
from journey.errors import ModelSpecError

__all__ = [
    "AGENT_OPTIONS",
    "DEFAULT_MODEL_SPEC",
    "OPENAI_APIS",
    "ClientPool",
    "ModelSpec",
    "client_spec",
    "create_client",
    "load_replies",
    "load_reply_function",
    "parse_model_spec",
]

DEFAULT_MODEL_SPEC = "embedded"

AGENT_OPTIONS = frozenset(o.name for b in registry.backends() for o in b.options if o.agent)
"""Options the agents read from the spec (`max_tokens`); the client is built without them."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec."""

    backend: str
    """The name of a registered backend (`journey.agents.backends.registry`)."""
    target: str = ""
    """Model name (openai), Hub id or directory (vllm), directory (hf), file (replay) or
    MODULE:NAME (function); empty for embedded."""
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def reply_tokens(self, default: int) -> int:
        """The most tokens one reply of the role may have: the spec's `max_tokens`, which
        wins, else `default` (the role's own limit, e.g. `--critic-tokens`)."""
        return int(self.options.get("max_tokens", default))

    def takes(self, option: str) -> bool:
        """True when this spec's backend takes the option `option`."""
        return registry.backend(self.backend).takes(option)

    def with_default(self, option: str, value: Any) -> ModelSpec:
        """This spec with `option=value` where its backend takes that option and the spec
        does not set it already; otherwise this spec as it is.

        Example: `spec.with_default("max_batch_size", 8)` batches a local model's requests
        by 8 unless the spec says otherwise, and leaves a server's spec alone.
        """
        if option in self.options or not self.takes(option):
            return self
        return replace(self, options={**self.options, option: value})

    def __str__(self) -> str:
        text = self.backend if not self.target else f"{self.backend}:{self.target}"
        if self.base_url:
            text += f"@{self.base_url}"
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model spec string; the registered backends say what is valid.

    Raises:
        ModelSpecError: the string names no backend, or an option is unknown or ill-typed.
    """
    spec = text.strip()
    if not spec:
        raise ModelSpecError("empty model spec; try 'embedded'")
    body, _, query = spec.partition("?")
    options: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        key, eq, value = pair.partition("=")
        declared = registry.option(key) if eq else None
        if declared is None:
            raise ModelSpecError(f"bad option {pair!r} in model spec {spec!r}")
        options[key] = declared.convert(value, spec)

    parsed = _parse_body(body, spec, options)
    chosen = registry.backend(parsed.backend)
    unknown = set(options) - chosen.option_names
    if unknown:
        raise ModelSpecError(
            f"option(s) {', '.join(sorted(unknown))} do not apply to {parsed.backend} models "
            f"(spec {spec!r}); allowed: {', '.join(sorted(chosen.option_names))}"
        )
    for declared in chosen.options:
        if declared.name in options:
            declared.check(options[declared.name], spec)
    return parsed


def _parse_body(body: str, spec: str, options: dict[str, Any]) -> ModelSpec:
    """The backend, target and base URL of the part before `?`."""
    known = {b.name: b for b in registry.backends()}
    scheme, _, rest = body.partition(":")
    if scheme in known:
        target = known[scheme].parse(rest, spec)
        if target is not None:
            return ModelSpec(scheme, target[0], target[1], options)
    for candidate in known.values():
        if candidate.claims is not None and candidate.claims(body):
            return ModelSpec(candidate.name, body, options=options)
    usages = [b.usage for b in known.values()]
    raise ModelSpecError(
        f"unknown model spec {spec!r}: use {', '.join(usages[:-1])} or {usages[-1]}"
    )


def client_spec(spec: ModelSpec) -> ModelSpec:
    """The spec without the options its agent reads (`max_tokens`): what the client is."""
    agent = {k for k in spec.options if (o := registry.option(k)) is not None and o.agent}
    if not agent:
        return spec
    kept = {k: v for k, v in spec.options.items() if k not in agent}
    return replace(spec, options=kept)


def create_client(spec: ModelSpec) -> ChatCompletionClient:
    """Build the client a spec names, with its backend's factory (which imports heavy
    modules only when used).

    Options the agents read (`max_tokens`) are not the client's and are left out; `rpm`
    and `tpm` put it behind a `RateLimitedClient` of its own (`ClientPool` shares one
    window among the roles on an endpoint).
    """
    client = registry.backend(spec.backend).create(client_spec(spec))
    return _rate_limited(client, spec)


def _rate_limited(client: ChatCompletionClient, spec: ModelSpec) -> ChatCompletionClient:
    rpm, tpm = spec.options.get("rpm"), spec.options.get("tpm")
    if rpm is None and tpm is None:
        return client
    return RateLimitedClient(client, RateWindow(rpm, tpm))


class ClientPool:
    """Hands out one client per distinct spec, so two roles on one local model share it
    (one copy in memory, and their requests batch together). Specs that differ only in
    options their agents read (`max_tokens`) get the same client; `vllm:` specs that
    differ only in client options (temperature, logprobs...) also share one server.

    A spec with `rpm` or `tpm` gets the client behind a `RateLimitedClient`, one window
    per endpoint and limits, so every role and session on that endpoint shares it."""

    def __init__(self) -> None:
        self._clients: dict[str, ChatCompletionClient] = {}
        self._limited: dict[tuple[str, int | None, int | None], RateLimitedClient] = {}

    def get(self, spec: ModelSpec | str) -> ChatCompletionClient:
        given = parse_model_spec(spec) if isinstance(spec, str) else spec
        parsed = client_spec(given)
        key = str(parsed)
        if key not in self._clients:
            self._clients[key] = create_client(parsed)
        rpm, tpm = given.options.get("rpm"), given.options.get("tpm")
        if rpm is None and tpm is None:
            return self._clients[key]
        if (key, rpm, tpm) not in self._limited:
            self._limited[key, rpm, tpm] = RateLimitedClient(
                self._clients[key], RateWindow(rpm, tpm)
            )
        return self._limited[key, rpm, tpm]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        self._limited.clear()
