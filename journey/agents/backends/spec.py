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

Every generating backend (embedded, hf, openai, vllm) takes `max_tokens=N` (N >= 1):
the most tokens one reply of this role may have, read by the agent that uses the
model (`policy` steps, `critic` verdicts); the client itself is the same with or
without it, so roles that differ only in `max_tokens` share one model.

OpenAI-compatible servers (`openai:`):
    logprobs=true        the server returns log-probs: the critic can score its labels
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
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from autogen_core.models import ChatCompletionClient

from journey.errors import ModelSpecError

Backend = Literal["embedded", "hf", "openai", "vllm", "replay", "function"]

DEFAULT_MODEL_SPEC = "embedded"

_OPTION_TYPES: dict[str, type] = {
    "temperature": float,
    "top_p": float,
    "seed": int,
    "max_batch_size": int,
    "num_threads": int,
    "prefix_cache_mb": int,
    "continuous_batching": bool,
    "prefill_in_step": bool,
    "packed_weights": bool,
    "dtype": str,
    "timeout": float,
    "max_retries": int,
    "logprobs": bool,
    "key_env": str,
    "cycle": bool,
    "python": str,
    "tensor_parallel_size": int,
    "gpu_memory_utilization": float,
    "max_model_len": int,
    "start_timeout": float,
    "max_tokens": int,
    "reasoning": bool,
    "api": str,
}
OPENAI_APIS = ("chat", "completions")
"""Values of the `api` option: chat completions, or plain-text completions (base models)."""

AGENT_OPTIONS = frozenset({"max_tokens"})
"""Options the agents read from the spec; the client is built without them."""
_LOCAL_MODEL_OPTIONS = frozenset(  # the embedded model and local directories: one client class
    {
        "temperature",
        "top_p",
        "seed",
        "max_batch_size",
        "num_threads",
        "prefix_cache_mb",
        "continuous_batching",
        "prefill_in_step",
        "packed_weights",
        "dtype",
        "max_tokens",
    }
)
_BACKEND_OPTIONS: dict[Backend, frozenset[str]] = {
    "embedded": _LOCAL_MODEL_OPTIONS,
    "hf": _LOCAL_MODEL_OPTIONS,
    "openai": frozenset(
        {
            "temperature",
            "top_p",
            "seed",
            "timeout",
            "max_retries",
            "logprobs",
            "key_env",
            "max_tokens",
            "reasoning",
            "api",
        }
    ),
    "vllm": frozenset(
        {
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
            "timeout",
            "max_retries",
            "logprobs",
            "python",
            "tensor_parallel_size",
            "gpu_memory_utilization",
            "max_model_len",
            "dtype",
            "start_timeout",
        }
    ),
    "replay": frozenset({"cycle"}),
    "function": frozenset(),
}


def _convert(key: str, raw: str, spec: str) -> Any:
    kind = _OPTION_TYPES[key]
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ModelSpecError(f"option {key}={raw!r} in model spec {spec!r} must be true or false")
    try:
        return kind(raw)
    except ValueError:
        raise ModelSpecError(
            f"option {key}={raw!r} in model spec {spec!r} must be a {kind.__name__}"
        ) from None


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec."""

    backend: Backend
    target: str = ""
    """Model name (openai), Hub id or directory (vllm), directory (hf), file (replay) or
    MODULE:NAME (function); empty for embedded."""
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def reply_tokens(self, default: int) -> int:
        """The most tokens one reply of the role may have: the spec's `max_tokens`, which
        wins, else `default` (the role's own limit, e.g. `--critic-tokens`)."""
        return int(self.options.get("max_tokens", default))

    def __str__(self) -> str:
        text = self.backend if not self.target else f"{self.backend}:{self.target}"
        if self.base_url:
            text += f"@{self.base_url}"
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model spec string.

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
        if not eq or key not in _OPTION_TYPES:
            raise ModelSpecError(f"bad option {pair!r} in model spec {spec!r}")
        options[key] = _convert(key, value, spec)

    scheme, colon, rest = body.partition(":")
    if body == "embedded" or (scheme == "embedded" and rest in ("", "smollm2-135m-instruct")):
        parsed = ModelSpec("embedded", options=options)
    elif scheme == "openai" and colon and rest:
        model, at, base_url = rest.partition("@")
        if not model or (at and not base_url.startswith(("http://", "https://"))):
            raise ModelSpecError(f"model spec {spec!r} should look like openai:MODEL[@http://...]")
        parsed = ModelSpec("openai", model, base_url or None, options)
    elif scheme == "vllm" and colon and rest:
        parsed = ModelSpec("vllm", rest, options=options)
    elif scheme == "hf" and colon and rest:
        parsed = ModelSpec("hf", rest, options=options)
    elif scheme == "replay" and colon and rest:
        parsed = ModelSpec("replay", rest, options=options)
    elif scheme == "function" and colon and rest:
        module, sep, name = rest.partition(":")
        if not (module and sep and name):
            raise ModelSpecError(f"model spec {spec!r} should look like function:MODULE:NAME")
        parsed = ModelSpec("function", rest, options=options)
    elif Path(body).expanduser().is_dir():
        parsed = ModelSpec("hf", body, options=options)
    else:
        raise ModelSpecError(
            f"unknown model spec {spec!r}: use 'embedded', 'hf:DIR' (or a directory), "
            "'openai:MODEL[@URL]', 'vllm:MODEL', 'replay:FILE' or 'function:MODULE:NAME'"
        )
    unknown = set(parsed.options) - _BACKEND_OPTIONS[parsed.backend]
    if unknown:
        raise ModelSpecError(
            f"option(s) {', '.join(sorted(unknown))} do not apply to {parsed.backend} models "
            f"(spec {spec!r}); allowed: {', '.join(sorted(_BACKEND_OPTIONS[parsed.backend]))}"
        )
    if options.get("max_tokens", 1) < 1:
        raise ModelSpecError(
            f"option max_tokens={options['max_tokens']!r} in model spec {spec!r} must be at least 1"
        )
    if options.get("api", "chat") not in OPENAI_APIS:
        raise ModelSpecError(
            f"option api={options['api']!r} in model spec {spec!r} must be one of "
            f"{', '.join(OPENAI_APIS)}"
        )
    return parsed


def load_replies(path: Path) -> list[str]:
    """Replies for a replay model: a JSON list of strings, or JSONL with one string per line."""
    if not path.is_file():
        raise ModelSpecError(f"replay file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ModelSpecError(f"replay file {str(path)!r} is not JSON: {error}") from None
    if not isinstance(data, list) or not all(isinstance(r, str) for r in data):
        raise ModelSpecError(f"replay file {str(path)!r} must hold a list of strings")
    return data


def load_reply_function(target: str) -> Any:
    """The callable a `function:MODULE:NAME` spec names (imported, not called)."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelSpecError(f"cannot import module {module_name!r}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelSpecError(f"{module_name}.{name} is not a function (spec 'function:{target}')")
    return function


def client_spec(spec: ModelSpec) -> ModelSpec:
    """The spec without the options its agent reads (`AGENT_OPTIONS`): what the client is."""
    if not AGENT_OPTIONS & set(spec.options):
        return spec
    kept = {k: v for k, v in spec.options.items() if k not in AGENT_OPTIONS}
    return replace(spec, options=kept)


def create_client(spec: ModelSpec) -> ChatCompletionClient:
    """Build the client a spec names. Heavy backends are imported only when used.

    Options the agents read (`max_tokens`) are not the client's and are left out.
    """
    options = dict(client_spec(spec).options)
    if spec.backend in ("embedded", "hf"):
        from journey.agents.backends.transformers_client import TransformersChatCompletionClient

        if spec.backend == "embedded":
            return TransformersChatCompletionClient.embedded(**options)
        directory = Path(spec.target).expanduser()
        if not directory.is_dir():
            raise ModelSpecError(f"model directory {spec.target!r} does not exist")
        return TransformersChatCompletionClient(directory, model_name=directory.name, **options)
    if spec.backend == "openai":
        from journey.agents.backends.openai_compat import openai_client_from_spec

        key_env = options.pop("key_env", "OPENAI_API_KEY")
        return openai_client_from_spec(spec.target, spec.base_url, api_key_env=key_env, **options)
    if spec.backend == "vllm":
        from journey.agents.backends.vllm_server import vllm_client_from_spec

        return vllm_client_from_spec(spec.target, **options)
    from journey.agents.backends.scripted import (
        FunctionChatCompletionClient,
        ScriptedChatCompletionClient,
    )

    if spec.backend == "function":
        return FunctionChatCompletionClient(load_reply_function(spec.target), **options)
    return ScriptedChatCompletionClient(load_replies(Path(spec.target)), **options)


class ClientPool:
    """Hands out one client per distinct spec, so two roles on one local model share it
    (one copy in memory, and their requests batch together). Specs that differ only in
    options their agents read (`max_tokens`) get the same client; `vllm:` specs that
    differ only in client options (temperature, logprobs...) also share one server."""

    def __init__(self) -> None:
        self._clients: dict[str, ChatCompletionClient] = {}

    def get(self, spec: ModelSpec | str) -> ChatCompletionClient:
        parsed = client_spec(parse_model_spec(spec) if isinstance(spec, str) else spec)
        key = str(parsed)
        if key not in self._clients:
            self._clients[key] = create_client(parsed)
        return self._clients[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
