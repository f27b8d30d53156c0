"""Requests for OpenAI's reasoning models, which refuse parts of the chat-completion API.

o1, o3, o4-mini and the gpt-5 family think before they answer, and their limit counts
the thinking too: they take `max_completion_tokens`, and answer HTTP 400 to
`max_tokens` and to the sampling and log-probability arguments (temperature, top_p,
stop, logprobs, top_logprobs, the penalties, logit_bias). `reasoning_request` rewrites
a request's arguments for them; `is_openai_reasoning_model` recognises them by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REFUSED_BY_REASONING_MODELS", "is_openai_reasoning_model", "reasoning_request"]

REFUSED_BY_REASONING_MODELS = frozenset(
    {
        "temperature",
        "top_p",
        "stop",
        "logprobs",
        "top_logprobs",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
    }
)
"""Arguments dropped from requests to a reasoning model."""

# o1, o1-mini, o3-pro-2025-06-10, o4-mini, gpt-5, gpt-5.1-codex...; not gpt-5-chat-latest,
# the non-reasoning model ChatGPT uses, which still takes max_tokens and a temperature.
_REASONING_NAME = re.compile(r"^(o[1-9](-.*)?|gpt-[5-9](\.\d+)?(?!-chat)(-.*)?)$")


def is_openai_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning-model names, with or without a provider prefix
    ("openai/o3-mini", as routers name them)."""
    return bool(_REASONING_NAME.match(model.rsplit("/", 1)[-1].strip().lower()))


def reasoning_request(args: Mapping[str, Any]) -> dict[str, Any]:
    """Chat-completion arguments as a reasoning model takes them.

    `max_tokens` becomes `max_completion_tokens` (an explicit `max_completion_tokens`
    wins), and the arguments in `REFUSED_BY_REASONING_MODELS` are dropped. Returns a
    new dict.
    """
    shaped = {k: v for k, v in args.items() if k not in REFUSED_BY_REASONING_MODELS}
    if "max_tokens" in shaped:
        limit = shaped.pop("max_tokens")
        if limit is not None:
            shaped.setdefault("max_completion_tokens", limit)
    return shaped
