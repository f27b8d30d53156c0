"""A backend for any OpenAI-compatible endpoint: OpenAI itself, a vLLM server, llama.cpp.

`OpenAICompatibleClient` wraps AutoGen's OpenAI chat-completion client around an SDK
client with its own retries switched off (`_openai_transport`), and retries transport
faults itself with tenacity: timeouts, connection errors, HTTP 408/409/429/5xx and
unreadable 200 bodies. Other 4xx answers (400, 401, 404, ...) are not retried. When a
call cannot be completed it raises `ModelUnavailableError` with a one-line message
naming the model, the base URL and the last error, never the API key.

What it asks and reads, server by server:

- Token counts are the server's (`usage`); `count_tokens` never loads a tokenizer
  (AutoGen's tiktoken downloads its encodings, and most GPU clusters have no internet).
- A reasoning model's thoughts, sent beside the answer as `reasoning` (vLLM) or
  `reasoning_content` (older vLLM, DeepSeek), come back in `CreateResult.thought`, the
  answer alone in `content`, whole or streamed.
- OpenAI's reasoning models (o1, o3, o4-mini, the gpt-5 family; any model with
  `reasoning=True`) get `max_completion_tokens` instead of `max_tokens`, and none of the
  sampling arguments they refuse (`_reasoning_models`).
- With `api="completions"` a base model is asked through `/v1/completions` with the chat
  rendered as plain text (`plain_prompt`); the reply is an ordinary `CreateResult`.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import openai
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # pyright: ignore[reportDeprecated]
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import BaseOpenAIChatCompletionClient, _model_info
from openai.types import Completion
from openai.types.chat import completion_create_params
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from journey.agents.backends._openai_completions import (
    completion_request,
    completion_result,
    first_token_top_logprobs,
)
from journey.agents.backends._openai_faults import (
    describe_fault,
    fault_cause,
    is_retryable,
    is_transport_fault,
    retry_after,
)
from journey.agents.backends._openai_transport import collect_stream_thoughts, openai_client
from journey.agents.backends._prompt_tokens import PromptTokenCounts, estimate_prompt_tokens
from journey.agents.backends._reasoning_models import (
    is_openai_reasoning_model,
    reasoning_request,
)
from journey.agents.backends.spec import OPENAI_APIS
from journey.engine.plain_prompt import load_plain_template, message_role, message_text
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

TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) return

Api = Literal["chat", "completions"]  # the values of spec.OPENAI_APIS

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
        reasoning: bool | None = None,
        api: Api = "chat",
        plain_template: str = "plain",
        http_client: openai.DefaultAsyncHttpxClient | None = None,
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
            reasoning: The model is one of OpenAI's reasoning models: send
                `max_completion_tokens` for `max_tokens` and drop the sampling arguments it
                refuses. Default: decided by the model's name (o1, o3, o4-mini, gpt-5...).
            api: "chat" asks `/v1/chat/completions`; "completions" asks `/v1/completions`
                with the chat rendered as plain text, for base models.
            plain_template: The prompt file (`journey/agents/prompts/<name>.yaml`) that
                renders chats as plain text with `api="completions"`.
            http_client: The httpx client that sends the requests (a proxy, certificates,
                event hooks that log them); default the openai SDK's own. Closed with this
                client.
            **create_defaults: Default chat-completion arguments (temperature, max_tokens, seed...).

        Raises:
            ConfigError: A numeric setting is out of range, a default is not a create
                argument, `api` is unknown, or log-probs are asked of a reasoning model.
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
        if api not in OPENAI_APIS:
            raise ConfigError(f"api must be one of {', '.join(OPENAI_APIS)}, got {api!r}")
        self._reasoning = is_openai_reasoning_model(model) if reasoning is None else reasoning
        if self._reasoning and (logprobs or api != "chat"):
            raise ConfigError(
                f"{model!r} is a reasoning model: it returns no log-probs and takes chat "
                "requests only (drop logprobs=true and api=completions, or set reasoning=false)"
            )
        if self._reasoning:
            create_defaults = reasoning_request(create_defaults)

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
        self._api: Api = api
        self._plain = load_plain_template(plain_template) if api == "completions" else None
        self._create_defaults = dict(create_defaults)
        # Requests sent here rather than through AutoGen: label scoring, completions.
        self._own_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._prompt_tokens = PromptTokenCounts()

        # One SDK client for generation and scoring, sharing its connections.
        self._sdk = openai_client(
            api_key=api_key, base_url=self._base_url, timeout=timeout, http_client=http_client
        )
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
        # AutoGen warns ("Resolved model mismatch") whenever the server names its model
        # otherwise than AutoGen's table does, to say its own token and cost estimates may
        # be off. journey uses neither, and llama.cpp names every model after its file: no
        # resolved name, no check (the switch AutoGen itself uses when no model is given).
        self._inner._resolved_model = None

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
        """One completion, retried on transport faults; an empty reply is returned as-is.

        A reasoning model's thoughts are in the result's `thought`, its answer alone in
        `content`.
        """
        if self._api == "completions":
            result = await self._complete(messages, extra_create_args)
        else:
            args = self._request_args(extra_create_args)
            result = await self._with_retries(
                lambda: self._inner.create(
                    messages,
                    tools=tools,
                    tool_choice=tool_choice,
                    json_output=json_output,
                    extra_create_args=args,
                    cancellation_token=cancellation_token,
                )
            )
        self._prompt_tokens.record(messages, result.usage.prompt_tokens)
        return result

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
        output, so a fault mid-stream raises `ModelUnavailableError` at once. The text
        chunks are the answer's; a reasoning model's thoughts arrive whole in the final
        result's `thought`. With `api="completions"` the reply comes as one chunk.
        """
        if self._api == "completions":
            result = await self.create(messages, extra_create_args=extra_create_args)
            if isinstance(result.content, str) and result.content:
                yield result.content
            yield result
            return
        args = self._request_args(extra_create_args)

        async def open_stream() -> tuple[
            AsyncGenerator[str | CreateResult, None], str | CreateResult | None
        ]:
            thoughts.clear()  # a failed attempt's
            stream = self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=args,
                cancellation_token=cancellation_token,
                include_usage=include_usage,
            )
            try:
                return stream, await anext(stream, None)
            except BaseException:
                await stream.aclose()
                raise

        with collect_stream_thoughts() as thoughts:  # the request is sent by the first anext
            stream, first = await self._with_retries(open_stream)
        try:
            if first is None:  # a stream that ended before its first chunk
                return
            chunks = _prepend(first, stream)
            async for chunk in chunks:
                if isinstance(chunk, CreateResult):
                    if thoughts:
                        chunk = chunk.model_copy(update={"thought": "".join(thoughts)})
                    self._prompt_tokens.record(messages, chunk.usage.prompt_tokens)
                yield chunk
        except Exception as exc:
            if is_transport_fault(exc):
                raise self._unavailable(exc, attempts=None) from exc
            raise
        finally:
            await stream.aclose()

    async def close(self) -> None:
        await self._inner.close()  # closes the SDK client

    def actual_usage(self) -> RequestUsage:
        return _add_usage(self._inner.actual_usage(), self._own_usage)

    def total_usage(self) -> RequestUsage:
        return _add_usage(self._inner.total_usage(), self._own_usage)

    def count_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        """Prompt tokens of `messages`, never from a tokenizer or the network.

        The server's own count (its reported `usage.prompt_tokens`) when these exact
        messages were sent recently (the last 1024 prompts, label scorings included);
        otherwise a local estimate, one token per 4 characters plus 4 per message.
        Tools are not counted.
        """
        known = self._prompt_tokens.get(messages)
        return known if known is not None else estimate_prompt_tokens(messages)

    def remaining_tokens(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
    ) -> int:
        """The model's context length from AutoGen's table, which knows OpenAI models only
        (KeyError otherwise), minus `count_tokens(messages)`."""
        return _model_info.get_token_limit(self._model) - self.count_tokens(messages)

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
        assistant message that the server continues (vLLM); with `api="completions"` it
        ends the plain-text prompt. Otherwise the prefix cannot be forced: it is dropped
        and the last user message instead asks for a one-word answer among the labels.

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
        if self._api == "completions":
            top = await self._score_completion(messages, prefix)
            return {label: _label_score(label, top) for label in labels}
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
            self._count_own(
                messages,
                RequestUsage(response.usage.prompt_tokens, response.usage.completion_tokens),
            )
        choice = response.choices[0] if response.choices else None
        content = choice.logprobs.content if choice and choice.logprobs else None
        if not content:
            raise self._no_logprobs()
        first = content[0]
        top = {t.token: t.logprob for t in first.top_logprobs}
        top.setdefault(first.token, first.logprob)
        return {label: _label_score(label, top) for label in labels}

    async def _score_completion(
        self, messages: Sequence[LLMMessage], prefix: str
    ) -> dict[str, float]:
        """Top log-probs of the first token after the plain-text prompt and `prefix`."""
        assert self._plain is not None
        prompt = self._plain.render(messages) + prefix
        response: Completion = await self._with_retries(
            lambda: self._sdk.completions.create(
                model=self._model, prompt=prompt, max_tokens=1, logprobs=TOP_LOGPROBS
            )
        )
        usage = completion_result(response).usage
        self._count_own(messages, usage)
        top = first_token_top_logprobs(response)
        if not top:
            raise self._no_logprobs()
        return top

    # --- base models: /v1/completions ---------------------------------------------------

    async def _complete(
        self, messages: Sequence[LLMMessage], extra_create_args: Mapping[str, Any]
    ) -> CreateResult:
        assert self._plain is not None
        prompt = self._plain.render(messages)
        request = completion_request(
            self._plain, {**self._create_defaults, **extra_create_args}, for_model=self._model
        )
        response: Completion = await self._with_retries(
            lambda: self._sdk.completions.create(model=self._model, prompt=prompt, **request)
        )
        result = completion_result(response)
        self._count_own(messages, result.usage)
        return result

    # --- requests -----------------------------------------------------------------------

    def _request_args(self, extra_create_args: Mapping[str, Any]) -> Mapping[str, Any]:
        """A call's chat-completion arguments as the model takes them."""
        return reasoning_request(extra_create_args) if self._reasoning else extra_create_args

    def _count_own(self, messages: Sequence[LLMMessage], usage: RequestUsage) -> None:
        """Add a request sent outside AutoGen to the usage totals and the known counts."""
        self._own_usage = _add_usage(self._own_usage, usage)
        self._prompt_tokens.record(messages, usage.prompt_tokens)

    def _no_logprobs(self) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"model {self._model!r} at {self._base_url} returned no logprobs; "
            "use a server that supports them or drop logprobs=True"
        )

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
                retry=retry_if_exception(is_retryable),
                before_sleep=self._count_retry,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    return await call()
        except Exception as exc:
            if is_transport_fault(exc):
                raise self._unavailable(exc, attempts) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        server_wait = retry_after(exc)
        if server_wait is not None:
            return min(max(server_wait, 0.0), self._max_backoff)
        backoff = min(self._backoff_base * 2.0 ** (state.attempt_number - 1), self._max_backoff)
        return backoff * random.uniform(0.5, 1.0)  # jitter spreads out clients hit together

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        cause = fault_cause(exc) if exc is not None else "unknown"
        self.retry_count += 1
        self.retries_by_cause[cause] = self.retries_by_cause.get(cause, 0) + 1

    def _unavailable(self, exc: BaseException, attempts: int | None) -> ModelUnavailableError:
        """One line for the user; `attempts` is None for a fault in the middle of a stream."""
        if attempts is None:
            what = "failed mid-stream"
        elif not is_retryable(exc):
            what = "rejected the request"
        else:
            what = f"unavailable after {attempts} attempt{'s' if attempts != 1 else ''}"
        detail = describe_fault(exc, self._timeout)
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
    reasoning: bool | None = None,
    api: Api = "chat",
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
        reasoning: An OpenAI reasoning model (no max_tokens, no sampling arguments);
            default: decided by the model's name.
        api: "chat", or "completions" for a base model asked with a plain-text prompt.
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
        reasoning=reasoning,
        api=api,
        **create_defaults,
    )


async def _prepend(first: _T, rest: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
    yield first
    async for item in rest:
        yield item


def _unknown_model_info() -> ModelInfo:
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=False,
        structured_output=False,
        family=ModelFamily.UNKNOWN,
    )


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
    return {"role": message_role(message), "content": message_text(message)}


def _add_usage(a: RequestUsage, b: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )
