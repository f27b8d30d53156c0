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

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal, TypeVar

import openai
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # pyright: ignore[reportDeprecated]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from openai.types import Completion
from pydantic import BaseModel

from journey.agents.backends._openai_completions import completion_request, completion_result
from journey.agents.backends._openai_faults import is_transport_fault
from journey.agents.backends._openai_label_scoring import (
    LABEL_FLOOR_LOGPROB,
    TOP_LOGPROBS,
    OpenAILabelScoring,
)
from journey.agents.backends._openai_options import (
    DUMMY_API_KEY,
    OPENAI_DEFAULT_BASE_URL,
    Api,
    autogen_client,
    check_client_options,
    endpoint_from_env,
    is_reasoning_client,
)
from journey.agents.backends._openai_rate_headers import ServerRateLimits
from journey.agents.backends._openai_retries import RetriedRequests
from journey.agents.backends._openai_transport import collect_stream_thoughts, openai_client
from journey.agents.backends._openai_usage import OpenAIUsage
from journey.agents.backends._prompt_tokens import PromptTokenCounts
from journey.agents.backends._reasoning_models import reasoning_request
from journey.engine.plain_prompt import load_plain_template

__all__ = [
    "DUMMY_API_KEY",
    "LABEL_FLOOR_LOGPROB",
    "OPENAI_DEFAULT_BASE_URL",
    "TOP_LOGPROBS",
    "OpenAICompatibleClient",
    "openai_client_from_spec",
]

_T = TypeVar("_T")


class OpenAICompatibleClient(
    OpenAILabelScoring, OpenAIUsage, RetriedRequests, ChatCompletionClient
):
    """An AutoGen model client for an OpenAI-compatible server, with retries.

    Implements `LabelScoringClient` when built with `logprobs=True`
    (`_openai_label_scoring`); counts tokens and usage as the server reports them
    (`_openai_usage`) and sends its requests with retries (`_openai_retries`).
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
        check_client_options(
            model,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_backoff=max_backoff,
            api=api,
            create_defaults=create_defaults,
        )
        self._reasoning = is_reasoning_client(model, reasoning, logprobs=logprobs, api=api)
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

        self.server_limits = ServerRateLimits()
        """The server's rate-limit headers, as last seen; requests wait out its pauses."""
        # One SDK client for generation and scoring, sharing its connections.
        self._sdk = openai_client(
            api_key=api_key,
            base_url=self._base_url,
            timeout=timeout,
            http_client=http_client,
            on_response=self.server_limits.on_response,
        )
        self._inner = autogen_client(
            self._sdk, model=model, create_defaults=create_defaults, model_info=model_info
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

    @property
    def capabilities(self) -> ModelCapabilities:  # pyright: ignore[reportDeprecated]
        return self._inner.model_info  # same data; AutoGen's property only adds a warning

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info

    # --- requests -----------------------------------------------------------------------

    def _request_args(self, extra_create_args: Mapping[str, Any]) -> Mapping[str, Any]:
        """A call's chat-completion arguments as the model takes them."""
        return reasoning_request(extra_create_args) if self._reasoning else extra_create_args

    async def _complete(
        self, messages: Sequence[LLMMessage], extra_create_args: Mapping[str, Any]
    ) -> CreateResult:
        """A base model's reply through `/v1/completions`, to the chat as plain text."""
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
    url, api_key = endpoint_from_env(model, base_url, api_key_env)
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
