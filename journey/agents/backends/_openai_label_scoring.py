"""Label scoring for `OpenAICompatibleClient`: its `LabelScoringClient` half.

One token is generated with the top 20 log-probs (`TOP_LOGPROBS`), through
`/v1/chat/completions` or, for a base model (`api="completions"`), through
`/v1/completions` with the chat rendered as plain text. A label scores the
log-sum-exp of the top tokens that start it (`label_score`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import openai
from autogen_core.models import LLMMessage, RequestUsage
from openai.types import Completion
from openai.types.chat import ChatCompletion

from journey.agents.backends._openai_completions import (
    completion_result,
    first_token_top_logprobs,
)
from journey.engine.plain_prompt import PlainPromptTemplate, message_role, message_text
from journey.errors import ConfigError, ModelUnavailableError
from journey.protocols import LabelScoring

__all__ = ["LABEL_FLOOR_LOGPROB", "TOP_LOGPROBS", "OpenAILabelScoring", "label_score"]

LABEL_FLOOR_LOGPROB = -100.0
"""Score given to a label none of whose possible first tokens is among the top log-probs."""

TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) return

_LABEL_INSTRUCTION = "Answer with exactly one word, one of: {labels}."

_T = TypeVar("_T")


class OpenAILabelScoring:
    """`score_labels` for an OpenAI-compatible client; a mixin of `OpenAICompatibleClient`,
    which sets the attributes below and sends the requests (`_with_retries`)."""

    _model: str
    _base_url: str
    _logprobs: bool
    _continue_final_message: bool
    _api: str
    _plain: PlainPromptTemplate | None
    _sdk: openai.AsyncOpenAI

    if TYPE_CHECKING:  # the client's (`_openai_retries.RetriedRequests` sends with retries)

        async def _with_retries(self, call: Callable[[], Awaitable[_T]]) -> _T: ...

        def _count_own(self, messages: Sequence[LLMMessage], usage: RequestUsage) -> None: ...

    @property
    def supports_label_scoring(self) -> bool:
        return self._logprobs

    @property
    def label_scoring(self) -> LabelScoring:
        return LabelScoring.FIRST_TOKEN

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
        else:
            top = await self._score_chat(messages, labels, prefix)
        return {label: label_score(label, top) for label in labels}

    async def _score_chat(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], prefix: str
    ) -> dict[str, float]:
        """Top log-probs of the assistant reply's first token, through chat completions."""
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

        response: ChatCompletion = await self._with_retries(
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
        return top

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

    def _no_logprobs(self) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"model {self._model!r} at {self._base_url} returned no logprobs; "
            "use a server that supports them or drop logprobs=True"
        )


def label_score(label: str, top: Mapping[str, float]) -> float:
    """The log-sum-exp of the top tokens that start `label`; `LABEL_FLOOR_LOGPROB` if none."""
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
