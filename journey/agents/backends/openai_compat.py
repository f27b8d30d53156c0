"""A backend for any OpenAI-compatible endpoint: OpenAI itself, a vLLM server, llama.cpp.

`OpenAICompatibleClient` wraps AutoGen's OpenAI chat-completion client around an SDK
client with its own retries switched off (`_openai_transport`), and retries transport
faults itself with tenacity: timeouts, connection errors, HTTP 408/409/429/5xx and
unreadable 200 bodies. Other 4xx answers (400, 401, 404, ...) are not retried. When a
call cannot be completed it raises `ModelUnavailableError` with a one-line message
naming the model, the base URL and the last error, never the API key.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import openai
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # pyright: ignore[reportDeprecated]
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import BaseOpenAIChatCompletionClient
from openai.types.chat import completion_create_params
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from journey.agents.backends._openai_transport import openai_client
from journey.errors import ConfigError, ModelUnavailableError

__all__ = [
    "LABEL_FLOOR_LOGPROB",
    "OPENAI_DEFAULT_BASE_URL",
    "OpenAICompatibleClient",
    "openai_client_from_spec",
]

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Used when neither the `base_url` argument nor `$OPENAI_BASE_URL` is set."""

LABEL_FLOOR_LOGPROB = -100.0
"""Score given to a label none of whose possible first tokens is among the top log-probs."""

DUMMY_API_KEY = "EMPTY"
"""Sent to servers that need no key (vLLM, llama.cpp); the openai SDK refuses an empty one."""

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Retried besides every 5xx."""

TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) return

_LABEL_INSTRUCTION = "Answer with exactly one word, one of: {labels}."

_CREATE_ARG_NAMES = frozenset(completion_create_params.CompletionCreateParamsBase.__annotations__)
_FORBIDDEN_DEFAULTS = frozenset({"messages", "model", "stream", "n", "function_call", "functions"})

_T = TypeVar("_T")


class OpenAICompatibleClient(ChatCompletionClient):
    """An AutoGen model client for an OpenAI-compatible server, with retries.

    Implements `LabelScoringClient` when built with `logprobs=True`.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = OPENAI_DEFAULT_BASE_URL,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_backoff: float = 30.0,
        model_info: ModelInfo | None = None,
        logprobs: bool = False,
        continue_final_message: bool = False,
        **create_defaults: Any,
    ) -> None:
        """Build the client; no request is sent until the first call.

        Args:
            model: Model name as the server knows it, e.g. "gpt-4o-mini" or the name vLLM serves.
            api_key: Sent as a bearer token; never logged, never in an error message.
            base_url: The server's OpenAI API root, e.g. "http://localhost:8000/v1".
            timeout: Seconds one HTTP request may take before it is abandoned (and retried).
            max_retries: Retries after the first attempt for a retryable fault; 0 disables them.
            backoff_base: First exponential-backoff wait in seconds; doubles on each retry.
            max_backoff: Upper bound in seconds on any wait, including a server's Retry-After.
            model_info: AutoGen capabilities of the model. Default: what AutoGen knows about
                `model`, else no vision, tools, JSON or structured output, family "unknown".
            logprobs: Switch on `score_labels` (the server must return top log-probs).
            continue_final_message: The server can continue a final assistant message (vLLM's
                `continue_final_message` extension); lets `score_labels` honour a prefix.
            **create_defaults: Default chat-completion arguments (temperature, max_tokens, seed...).

        Raises:
            ConfigError: A numeric setting is out of range or a default is not a create argument.
        """
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries!r}")
        if backoff_base < 0 or max_backoff < 0:
            raise ConfigError(
                f"backoff_base and max_backoff must be >= 0, got {backoff_base!r}, {max_backoff!r}"
            )
        given = set(create_defaults)
        unknown = sorted(
            (given - _CREATE_ARG_NAMES - {"extra_body"}) | (given & _FORBIDDEN_DEFAULTS)
        )
        if unknown:
            raise ConfigError(f"not a chat-completion default for {model!r}: {', '.join(unknown)}")

        self._model = model
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._max_backoff = max_backoff
        self._logprobs = logprobs
        self._continue_final_message = continue_final_message
        self._secret = api_key
        self.retry_count = 0
        """Retries made by this client so far, over all calls."""
        self.retries_by_cause: dict[str, int] = {}
        """Retries by cause: an HTTP status ("429"), "timeout", "connection", "invalid_response"."""
        self._scoring_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

        # One SDK client for generation and scoring, sharing its connections.
        self._sdk = openai_client(api_key=api_key, base_url=self._base_url, timeout=timeout)
        create_args = {**create_defaults, "model": model}
        if model_info is None:
            try:  # a model name AutoGen knows brings its own capabilities
                self._inner = BaseOpenAIChatCompletionClient(self._sdk, create_args=create_args)
            except ValueError:
                model_info = _unknown_model_info()
        if model_info is not None:
            self._inner = BaseOpenAIChatCompletionClient(
                self._sdk, create_args=create_args, model_info=model_info
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self._model!r}, base_url={self._base_url!r}, "
            f"logprobs={self._logprobs!r}, retry_count={self.retry_count})"
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    # --- ChatCompletionClient -------------------------------------------------------------

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """One completion, retried on transport faults; an empty reply is returned as-is."""
        return await self._with_retries(
            lambda: self._inner.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
        include_usage: bool | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Stream chunks ending with a `CreateResult`.

        Retried only until the first chunk arrives: after that the caller has seen
        output, so a fault mid-stream raises `ModelUnavailableError` at once.
        """

        async def open_stream() -> tuple[
            AsyncGenerator[str | CreateResult, None], str | CreateResult | None
        ]:
            stream = self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
                include_usage=include_usage,
            )
            try:
                return stream, await anext(stream, None)
            except BaseException:
                await stream.aclose()
                raise

        stream, first = await self._with_retries(open_stream)
        try:
            if first is None:  # a stream that ended before its first chunk
                return
            yield first
            async for chunk in stream:
                yield chunk
        except Exception as exc:
            if _is_transport_fault(exc):
                raise self._unavailable(exc, attempts=None) from exc
            raise
        finally:
            await stream.aclose()

    async def close(self) -> None:
        await self._inner.close()  # closes the SDK client

    def actual_usage(self) -> RequestUsage:
        return _add_usage(self._inner.actual_usage(), self._scoring_usage)

    def total_usage(self) -> RequestUsage:
        return _add_usage(self._inner.total_usage(), self._scoring_usage)

    def count_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        return self._inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        """Delegated to AutoGen, which knows OpenAI models' limits only (KeyError otherwise)."""
        return self._inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # pyright: ignore[reportDeprecated]
        return self._inner.model_info  # same data; AutoGen's property only adds a warning

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info

    # --- LabelScoringClient ---------------------------------------------------------------

    @property
    def supports_label_scoring(self) -> bool:
        return self._logprobs

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        """Log-probability of each label as the start of the assistant's reply.

        One token is generated with the top 20 log-probs. A label scores the log-sum-exp
        of the top tokens that, stripped of whitespace and case-folded, are a non-empty
        prefix of the label; labels with no such token get `LABEL_FLOOR_LOGPROB`. Only the
        first token is scored, so labels sharing a first token tie.

        With `continue_final_message=True` the prefix is sent as the start of a final
        assistant message that the server continues (vLLM). Otherwise the prefix cannot be
        forced: it is dropped and the last user message instead asks for a one-word answer
        among the labels.

        Args:
            messages: The conversation; the assistant turn to score comes after it.
            labels: Candidate continuations, e.g. ["continue", "backtrack"].
            prefix: Text the assistant turn starts with before the label, e.g. "ACTION: ".

        Raises:
            ConfigError: The client was built without `logprobs=True`.
            ModelUnavailableError: The server failed, or answered without log-probs.
        """
        if not self._logprobs:
            raise ConfigError(f"label scoring for {self._model!r} needs logprobs=True")
        raw = self._sdk
        oai_messages = [_to_openai_message(m) for m in messages]
        extra_body: dict[str, Any] = {}
        if prefix and self._continue_final_message:
            oai_messages.append({"role": "assistant", "content": prefix})
            extra_body = {"continue_final_message": True, "add_generation_prompt": False}
        elif prefix:
            instruction = _LABEL_INSTRUCTION.format(labels=", ".join(labels))
            if oai_messages and oai_messages[-1]["role"] == "user":
                last = oai_messages[-1]
                oai_messages[-1] = {**last, "content": f"{last['content']}\n\n{instruction}"}
            else:
                oai_messages.append({"role": "user", "content": instruction})

        response = await self._with_retries(
            lambda: raw.chat.completions.create(
                model=self._model,
                messages=oai_messages,  # type: ignore[arg-type]
                max_tokens=1,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
                extra_body=extra_body or None,
            )
        )
        if response.usage is not None:
            self._scoring_usage = _add_usage(
                self._scoring_usage,
                RequestUsage(response.usage.prompt_tokens, response.usage.completion_tokens),
            )
        choice = response.choices[0] if response.choices else None
        content = choice.logprobs.content if choice and choice.logprobs else None
        if not content:
            raise ModelUnavailableError(
                f"model {self._model!r} at {self._base_url} returned no logprobs; "
                "use a server that supports them or drop logprobs=True"
            )
        first = content[0]
        top = {t.token: t.logprob for t in first.top_logprobs}
        top.setdefault(first.token, first.logprob)
        return {label: _label_score(label, top) for label in labels}

    # --- retries ------------------------------------------------------------------------

    async def _before_request(self) -> None:
        """Runs before every request; a subclass that starts its own server waits here
        until the server is ready (a server that cannot start raises, without retries)."""

    async def _with_retries(self, call: Callable[[], Awaitable[_T]]) -> _T:
        await self._before_request()
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception(_is_retryable),
                before_sleep=self._count_retry,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    return await call()
        except Exception as exc:
            if _is_transport_fault(exc):
                raise self._unavailable(exc, attempts) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        server_wait = _retry_after(exc)
        if server_wait is not None:
            return min(max(server_wait, 0.0), self._max_backoff)
        backoff = min(self._backoff_base * 2.0 ** (state.attempt_number - 1), self._max_backoff)
        return backoff * random.uniform(0.5, 1.0)  # jitter spreads out clients hit together

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        cause = _cause(exc) if exc is not None else "unknown"
        self.retry_count += 1
        self.retries_by_cause[cause] = self.retries_by_cause.get(cause, 0) + 1

    def _unavailable(self, exc: BaseException, attempts: int | None) -> ModelUnavailableError:
        """One line for the user; `attempts` is None for a fault in the middle of a stream."""
        if attempts is None:
            what = "failed mid-stream"
        elif not _is_retryable(exc):
            what = "rejected the request"
        else:
            what = f"unavailable after {attempts} attempt{'s' if attempts != 1 else ''}"
        detail = _describe(exc, self._timeout)
        if self._secret:
            detail = detail.replace(self._secret, "***")
        return ModelUnavailableError(f"model {self._model!r} at {self._base_url} {what}: {detail}")


def openai_client_from_spec(
    model: str,
    base_url: str | None,
    *,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 60.0,
    max_retries: int = 5,
    logprobs: bool = False,
    backoff_base: float = 0.5,
    max_backoff: float = 30.0,
    model_info: ModelInfo | None = None,
    continue_final_message: bool = False,
    **create_defaults: Any,
) -> OpenAICompatibleClient:
    """Build a client from a model name and an optional server URL, reading the key from the env.

    Args:
        model: Model name as the server knows it.
        base_url: The server's API root; default `$OPENAI_BASE_URL`, else OpenAI's.
        api_key_env: Environment variable holding the API key. Servers other than
            api.openai.com get the dummy key "EMPTY" when it is unset.
        timeout: Seconds per HTTP request.
        max_retries: Retries after the first attempt for a retryable fault.
        logprobs: Switch on label scoring.
        backoff_base: First backoff wait in seconds.
        max_backoff: Cap in seconds on any wait.
        model_info: AutoGen capabilities; default as in `OpenAICompatibleClient`.
        continue_final_message: The server continues a final assistant message (vLLM).
        **create_defaults: Default chat-completion arguments, e.g. temperature=0.7.

    Raises:
        ModelUnavailableError: api.openai.com is the target and `api_key_env` is unset.
        ConfigError: A setting is out of range.

    Example:
        >>> openai_client_from_spec("Qwen/Qwen2.5-1.5B-Instruct", "http://localhost:8000/v1")
    """
    url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
    api_key = os.environ.get(api_key_env, "")
    if not api_key:
        if urlparse(url).hostname == "api.openai.com":
            raise ModelUnavailableError(
                f"model {model!r} at {url} needs an API key: set ${api_key_env}"
            )
        api_key = DUMMY_API_KEY
    return OpenAICompatibleClient(
        model,
        api_key=api_key,
        base_url=url,
        timeout=timeout,
        max_retries=max_retries,
        backoff_base=backoff_base,
        max_backoff=max_backoff,
        model_info=model_info,
        logprobs=logprobs,
        continue_final_message=continue_final_message,
        **create_defaults,
    )


def _unknown_model_info() -> ModelInfo:
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=False,
        structured_output=False,
        family=ModelFamily.UNKNOWN,
    )


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    # APITimeoutError is an APIConnectionError; the other two are unreadable 200 bodies.
    return isinstance(
        exc, openai.APIConnectionError | openai.APIResponseValidationError | json.JSONDecodeError
    )


def _is_transport_fault(exc: BaseException) -> bool:
    """A fault of the server or the wire (retryable or not), not a bug or a bad argument."""
    return isinstance(exc, openai.APIError | json.JSONDecodeError)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return str(exc.status_code)
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    return "invalid_response"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, openai.APIStatusError):
        message = _server_message(exc)
        text = f"HTTP {exc.status_code}" + (f" ({message})" if message else "")
    elif isinstance(exc, openai.APITimeoutError):
        text = f"timed out after {timeout:g} s"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = "connection failed" + (f" ({type(cause).__name__}: {cause})" if cause else "")
    else:
        text = f"unreadable response body ({type(exc).__name__}: {exc})"
    text = " ".join(text.split())  # one line, whatever the server sent
    return text if len(text) <= 300 else text[:297] + "..."


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    return ""


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `Retry-After` seconds or date)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return None


def _label_score(label: str, top: Mapping[str, float]) -> float:
    target = label.strip().casefold()
    matches = [
        logprob
        for token, logprob in top.items()
        if (piece := token.strip().casefold()) and target.startswith(piece)
    ]
    if not target or not matches:
        return LABEL_FLOOR_LOGPROB
    # Distinct tokens (" continue", "Continue") are alternative ways to start the label.
    peak = max(matches)
    return peak + math.log(sum(math.exp(m - peak) for m in matches))


def _to_openai_message(message: LLMMessage) -> dict[str, str]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, UserMessage):
        if isinstance(message.content, str):
            return {"role": "user", "content": message.content}
        return {
            "role": "user",
            "content": "\n".join(p for p in message.content if isinstance(p, str)),
        }
    if isinstance(message, AssistantMessage) and isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    raise ConfigError(f"label scoring takes text messages only, got {type(message).__name__}")


def _add_usage(a: RequestUsage, b: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )
