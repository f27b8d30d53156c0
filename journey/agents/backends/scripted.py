"""Model clients that answer from a script: for tests, demos and replays.

`ScriptedChatCompletionClient` answers from a list, in order (like AutoGen's
`ReplayChatCompletionClient` and llm's `MockModel.enqueue`); `FunctionChatCompletionClient`
answers by calling a function of the conversation, for critics whose verdict
depends on the step they are shown (like pydantic-ai's `FunctionModel`).
Both record every request so tests can check what the agents sent.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema

from journey.errors import ModelUnavailableError
from journey.protocols import LabelScoring

ReplyFunction = Callable[[Sequence[LLMMessage]], str | Awaitable[str]]
LabelScoreFunction = Callable[[Sequence[LLMMessage], Sequence[str]], Mapping[str, float]]

_MODEL_INFO: ModelInfo = {
    "vision": False,
    "function_calling": False,
    "json_output": False,
    "structured_output": False,
    "family": "unknown",
}


class ScriptExhaustedError(ModelUnavailableError):
    """A scripted client was asked for more replies than its script holds."""


def _approx_tokens(text: str) -> int:
    """A cheap, deterministic token count: whitespace-separated words."""
    return len(text.split())


def _message_text(message: LLMMessage) -> str:
    content = getattr(message, "content", "")
    return content if isinstance(content, str) else str(content)


class _ScriptedBase(ChatCompletionClient):
    """Usage accounting and the parts of the interface every scripted client shares."""

    def __init__(self, *, label_scores: LabelScoreFunction | None, context_length: int) -> None:
        self.requests: list[list[LLMMessage]] = []
        self._label_scores = label_scores
        self._context_length = context_length
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)

    async def _reply(self, messages: Sequence[LLMMessage]) -> str:
        raise NotImplementedError

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        if tools:
            raise ValueError("scripted clients do not support tools")
        self.requests.append(list(messages))
        text = await self._reply(messages)
        stops = extra_create_args.get("stop") or ()
        finish: Literal["stop", "length"] = "stop"
        for stop in [stops] if isinstance(stops, str) else stops:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        max_tokens = extra_create_args.get("max_tokens")
        if max_tokens is not None and _approx_tokens(text) > max_tokens:
            text = " ".join(text.split()[:max_tokens])
            finish = "length"
        usage = RequestUsage(
            prompt_tokens=self.count_tokens(messages), completion_tokens=_approx_tokens(text)
        )
        self._last = usage
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self._total.completion_tokens + usage.completion_tokens,
        )
        return CreateResult(finish_reason=finish, content=text, usage=usage, cached=False)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Yields the whole reply as one chunk, then the `CreateResult`."""
        result = await self.create(messages, tools=tools, extra_create_args=extra_create_args)
        assert isinstance(result.content, str)
        yield result.content
        yield result

    @property
    def supports_label_scoring(self) -> bool:
        return self._label_scores is not None

    @property
    def label_scoring(self) -> LabelScoring:
        return LabelScoring.SEQUENCE  # whatever the function says, taken as whole labels

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        if self._label_scores is None:
            raise ValueError("this scripted client was built without label scores")
        self.requests.append(list(messages))
        scores = self._label_scores(messages, labels)
        return {label: float(scores.get(label, -100.0)) for label in labels}

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._last

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return sum(_approx_tokens(_message_text(m)) for m in messages)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        return max(self._context_length - self.count_tokens(messages), 0)

    @property
    def capabilities(self) -> ModelCapabilities:
        return {"vision": False, "function_calling": False, "json_output": False}

    @property
    def model_info(self) -> ModelInfo:
        return _MODEL_INFO


class ScriptedChatCompletionClient(_ScriptedBase):
    """Answers each request with the next reply of a fixed script.

    Args:
        replies: The replies, in the order they will be given.
        cycle: Start again from the first reply when the script runs out, instead
            of raising `ScriptExhaustedError`.
        label_scores: Makes the client a label scorer; called with the messages and
            the labels, returns a log-probability per label.
        context_length: What `remaining_tokens` counts down from.
    """

    def __init__(
        self,
        replies: Sequence[str],
        *,
        cycle: bool = False,
        label_scores: LabelScoreFunction | None = None,
        context_length: int = 8192,
    ) -> None:
        super().__init__(label_scores=label_scores, context_length=context_length)
        self._replies = list(replies)
        self._cycle = cycle
        self._next = 0

    @property
    def remaining_replies(self) -> int:
        return len(self._replies) - self._next

    async def _reply(self, messages: Sequence[LLMMessage]) -> str:
        if self._next >= len(self._replies):
            if not (self._cycle and self._replies):
                raise ScriptExhaustedError(
                    f"scripted model ran out of replies after {len(self._replies)}"
                )
            self._next = 0
        reply = self._replies[self._next]
        self._next += 1
        return reply


class FunctionChatCompletionClient(_ScriptedBase):
    """Answers each request by calling `reply(messages)` (sync or async)."""

    def __init__(
        self,
        reply: ReplyFunction,
        *,
        label_scores: LabelScoreFunction | None = None,
        context_length: int = 8192,
    ) -> None:
        super().__init__(label_scores=label_scores, context_length=context_length)
        self._function = reply

    async def _reply(self, messages: Sequence[LLMMessage]) -> str:
        out = self._function(messages)
        return await out if inspect.isawaitable(out) else out
