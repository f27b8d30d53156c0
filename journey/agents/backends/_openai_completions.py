"""Base models through `/v1/completions` (`api=completions`): the request and its reply.

A base model has no chat template, so the chat is rendered as one plain-text prompt
(`plain_prompt`) and sent to the legacy completions endpoint, which vLLM, llama.cpp and
OpenAI all serve. The reply's text comes back as an ordinary `CreateResult`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core.models import CreateResult, RequestUsage
from openai.types import Completion, completion_create_params

from journey.engine.plain_prompt import PlainPromptTemplate
from journey.errors import ConfigError

__all__ = ["completion_request", "completion_result", "first_token_top_logprobs"]

_COMPLETION_ARGS = frozenset(completion_create_params.CompletionCreateParamsBase.__annotations__)
_SET_HERE = frozenset({"model", "prompt", "stream", "n", "echo", "best_of", "suffix"})

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


def completion_request(
    template: PlainPromptTemplate, args: Mapping[str, Any], *, for_model: str
) -> dict[str, Any]:
    """Keyword arguments for `completions.create`, but for the model and the prompt.

    `max_completion_tokens` is sent as `max_tokens` (the only limit the endpoint knows)
    and the template's stop sequences join the caller's.

    Raises:
        ConfigError: An argument the completions endpoint does not take (tools,
            response_format, top_logprobs...), naming it.
    """
    request = dict(args)
    if "max_completion_tokens" in request:
        limit = request.pop("max_completion_tokens")
        request.setdefault("max_tokens", limit)
    given_names = set(request)
    unknown = sorted((given_names - _COMPLETION_ARGS - {"extra_body"}) | (given_names & _SET_HERE))
    if unknown:
        raise ConfigError(
            f"not an argument of a completions request (api=completions) for {for_model!r}: "
            f"{', '.join(unknown)}"
        )
    given = request.get("stop")
    stops = [given] if isinstance(given, str) else list(given or [])
    stops += [s for s in template.stop if s not in stops]
    if stops:
        request["stop"] = stops
    return request


def completion_result(completion: Completion) -> CreateResult:
    """The reply's text, finish reason and usage; an empty reply if there is no choice."""
    choice = completion.choices[0] if completion.choices else None
    usage = completion.usage
    reason = _FINISH_REASONS.get(str(choice.finish_reason), "unknown") if choice else "unknown"
    return CreateResult(
        finish_reason=reason,  # type: ignore[arg-type]
        content=choice.text if choice else "",
        usage=RequestUsage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        ),
        cached=False,
    )


def first_token_top_logprobs(completion: Completion) -> dict[str, float] | None:
    """The top log-probs of the reply's first token, in either format servers use.

    OpenAI and vLLM send the legacy form (`tokens`, `token_logprobs` and `top_logprobs`
    as one token-to-logprob mapping per position); llama.cpp sends the chat form
    (`content`, a list of tokens each with its `top_logprobs` list).
    """
    choice = completion.choices[0] if completion.choices else None
    logprobs = choice.logprobs if choice else None
    if logprobs is None:
        return None
    top: dict[str, float] = {}
    if logprobs.top_logprobs:
        top.update(logprobs.top_logprobs[0] or {})
        if logprobs.tokens and logprobs.token_logprobs and logprobs.token_logprobs[0] is not None:
            top.setdefault(logprobs.tokens[0], logprobs.token_logprobs[0])
        return top or None
    content = (logprobs.model_extra or {}).get("content")
    if isinstance(content, Sequence) and content and isinstance(content[0], Mapping):
        first = content[0]
        for entry in first.get("top_logprobs") or []:
            if isinstance(entry, Mapping) and "token" in entry and "logprob" in entry:
                top[str(entry["token"])] = float(entry["logprob"])
        if "token" in first and "logprob" in first:
            top.setdefault(str(first["token"]), float(first["logprob"]))
    return top or None
