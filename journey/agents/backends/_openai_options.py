"""What `OpenAICompatibleClient` is built with: its settings checked, and AutoGen's client.

Numeric settings must be in range, chat-completion defaults must be arguments the
endpoint takes (and none the client sets itself), and a reasoning model, which returns
no log-probs, cannot score labels or be asked through `/v1/completions`. AutoGen's
chat-completion client, which `OpenAICompatibleClient` wraps, is built around the SDK
client with the model's capabilities, known or assumed. A client built from a spec
finds its server and API key in the environment when the spec does not name them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlparse

import openai
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.openai import BaseOpenAIChatCompletionClient
from openai.types.chat import completion_create_params

from journey.agents.backends._reasoning_models import is_openai_reasoning_model
from journey.agents.backends.spec import OPENAI_APIS
from journey.errors import ConfigError, ModelUnavailableError

__all__ = [
    "DUMMY_API_KEY",
    "OPENAI_DEFAULT_BASE_URL",
    "Api",
    "autogen_client",
    "check_client_options",
    "endpoint_from_env",
    "is_reasoning_client",
]

Api = Literal["chat", "completions"]  # the values of spec.OPENAI_APIS

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Used when neither the `base_url` argument nor `$OPENAI_BASE_URL` is set."""

DUMMY_API_KEY = "EMPTY"
"""Sent to servers that need no key (vLLM, llama.cpp); the openai SDK refuses an empty one."""

_CREATE_ARG_NAMES = frozenset(completion_create_params.CompletionCreateParamsBase.__annotations__)
_FORBIDDEN_DEFAULTS = frozenset({"messages", "model", "stream", "n", "function_call", "functions"})


def check_client_options(
    model: str,
    *,
    timeout: float,
    max_retries: int,
    backoff_base: float,
    max_backoff: float,
    api: str,
    create_defaults: Mapping[str, Any],
) -> None:
    """Raise `ConfigError` for the first setting out of range or unknown."""
    if timeout <= 0:
        raise ConfigError(f"timeout must be positive, got {timeout!r}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries!r}")
    if backoff_base < 0 or max_backoff < 0:
        raise ConfigError(
            f"backoff_base and max_backoff must be >= 0, got {backoff_base!r}, {max_backoff!r}"
        )
    given = set(create_defaults)
    unknown = sorted((given - _CREATE_ARG_NAMES - {"extra_body"}) | (given & _FORBIDDEN_DEFAULTS))
    if unknown:
        raise ConfigError(f"not a chat-completion default for {model!r}: {', '.join(unknown)}")
    if api not in OPENAI_APIS:
        raise ConfigError(f"api must be one of {', '.join(OPENAI_APIS)}, got {api!r}")


def endpoint_from_env(model: str, base_url: str | None, api_key_env: str) -> tuple[str, str]:
    """The base URL (`base_url`, else `$OPENAI_BASE_URL`, else OpenAI's) and the API key
    (`$api_key_env`, else `DUMMY_API_KEY` for servers other than api.openai.com).

    Raises:
        ModelUnavailableError: api.openai.com is the target and `api_key_env` is unset.
    """
    url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
    api_key = os.environ.get(api_key_env, "")
    if not api_key:
        if urlparse(url).hostname == "api.openai.com":
            raise ModelUnavailableError(
                f"model {model!r} at {url} needs an API key: set ${api_key_env}"
            )
        api_key = DUMMY_API_KEY
    return url, api_key


def is_reasoning_client(model: str, reasoning: bool | None, *, logprobs: bool, api: str) -> bool:
    """Whether the client is for an OpenAI reasoning model: `reasoning`, else decided by the
    model's name.

    Raises:
        ConfigError: A reasoning model is asked for log-probs or through completions.
    """
    reasoning = is_openai_reasoning_model(model) if reasoning is None else reasoning
    if reasoning and (logprobs or api != "chat"):
        raise ConfigError(
            f"{model!r} is a reasoning model: it returns no log-probs and takes chat "
            "requests only (drop logprobs=true and api=completions, or set reasoning=false)"
        )
    return reasoning


def autogen_client(
    sdk: openai.AsyncOpenAI,
    *,
    model: str,
    create_defaults: Mapping[str, Any],
    model_info: ModelInfo | None,
) -> BaseOpenAIChatCompletionClient:
    """AutoGen's chat-completion client over `sdk`, with `model_info` as the model's
    capabilities; default what AutoGen knows about `model`, else none (family unknown)."""
    create_args = {**create_defaults, "model": model}
    inner: BaseOpenAIChatCompletionClient | None = None
    if model_info is None:
        try:  # a model name AutoGen knows brings its own capabilities
            inner = BaseOpenAIChatCompletionClient(sdk, create_args=create_args)
        except ValueError:
            model_info = _unknown_model_info()
    if inner is None:
        inner = BaseOpenAIChatCompletionClient(sdk, create_args=create_args, model_info=model_info)
    # AutoGen warns ("Resolved model mismatch") whenever the server names its model
    # otherwise than AutoGen's table does, to say its own token and cost estimates may
    # be off. journey uses neither, and llama.cpp names every model after its file: no
    # resolved name, no check (the switch AutoGen itself uses when no model is given).
    inner._resolved_model = None
    return inner


def _unknown_model_info() -> ModelInfo:
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=False,
        structured_output=False,
        family=ModelFamily.UNKNOWN,
    )
