"""The expansion writer: asks a model to expand a reference solution into a long thought.

One request per attempt: the system prompt, the worked example, the problem with its
reference solution and answer (`prompts/expand.yaml`, or a user's file of the same
layout). A retry also shows the rejected attempt and why it was rejected, so the model
can mend it and a deterministic model does not write the same text again. The writer
only asks; reading and checking the reply is the session's work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from journey.agents._usage import to_usage
from journey.agents.policy import PolicyAgent
from journey.agents.prompt_sets import PromptSet, load_prompt_file, load_prompts
from journey.protocols import TokenUsage, split_reasoning

__all__ = ["EXPANSION_TEMPLATES", "ExpansionReply", "ExpansionWriter", "expansion_prompts"]

EXPANSION_TEMPLATES = ("system", "expand", "retry")
"""The templates an expansion prompt set must hold."""


def expansion_prompts(path: Path | str | None = None) -> PromptSet:
    """The packaged expansion prompts, or a user's file in their place.

    Raises:
        ConfigError: the file cannot be read or lacks a template.
    """
    prompts = load_prompts("expand") if path is None else load_prompt_file(path)
    return prompts.require(EXPANSION_TEMPLATES)


@dataclass(frozen=True)
class ExpansionReply:
    """One attempt's reply."""

    raw: str
    """The reply, verbatim."""
    text: str
    """The answer part: what is read and checked."""
    reasoning: str
    """A reasoning model's thoughts before it, never checked."""
    usage: TokenUsage
    latency: float
    cut_off: bool
    """The token limit ended the reply."""

    @classmethod
    def logged(cls, raw: str, reasoning: str, usage: TokenUsage, latency: float) -> ExpansionReply:
        """A reply as the log keeps it (its text is read again from `raw`)."""
        return cls(raw, split_reasoning(raw).answer, reasoning, usage, latency, cut_off=False)


class ExpansionWriter:
    """Writes expansions of reference solutions with one model.

    Args:
        client: Any AutoGen chat completion client.
        prompts: The expansion prompt set (`expansion_prompts`).
        max_tokens: Generation limit for one expansion.
        temperature: Sampling temperature; None keeps the client's default.
    """

    def __init__(
        self,
        client: ChatCompletionClient,
        *,
        prompts: PromptSet,
        max_tokens: int = 4096,
        temperature: float | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.max_tokens = max_tokens
        self.temperature = temperature

    @classmethod
    def from_policy(cls, policy: PolicyAgent, prompts: PromptSet) -> ExpansionWriter:
        """The writer with the policy's model, token limit and temperature."""
        return cls(
            policy.model_client,
            prompts=prompts,
            max_tokens=policy.max_tokens,
            temperature=policy.temperature,
        )

    def messages(
        self,
        problem: str,
        reference: str,
        answer: str,
        *,
        rejected: tuple[str, list[str]] | None = None,
        attempt: int = 1,
    ) -> list[LLMMessage]:
        """The request of one attempt; `rejected` is the previous attempt's text and reasons."""
        example: list[LLMMessage] = [
            UserMessage(content=text, source="user")
            if role == "user"
            else AssistantMessage(content=text, source="expander")
            for role, text in self.prompts.example
        ]
        ask = self.prompts.format("expand", problem=problem, reference=reference, answer=answer)
        messages = [
            SystemMessage(content=self.prompts.format("system")),
            *example,
            UserMessage(content=ask, source="user"),
        ]
        if rejected is not None:
            text, reasons = rejected
            retry = self.prompts.format(
                "retry", attempt=attempt - 1, reasons="\n".join(f"- {r}" for r in reasons)
            )
            messages += [
                AssistantMessage(content=text or "…", source="expander"),
                UserMessage(content=retry, source="user"),
            ]
        return messages

    async def write(
        self,
        problem: str,
        reference: str,
        answer: str,
        *,
        rejected: tuple[str, list[str]] | None = None,
        attempt: int = 1,
    ) -> ExpansionReply:
        """Ask for one expansion. Model errors propagate (the session ends on them)."""
        started = time.monotonic()
        args: dict[str, object] = {"max_tokens": self.max_tokens}
        if self.temperature is not None:
            args["temperature"] = self.temperature
        result = await self.client.create(
            self.messages(problem, reference, answer, rejected=rejected, attempt=attempt),
            extra_create_args=args,
        )
        raw = result.content if isinstance(result.content, str) else ""
        reply = split_reasoning(raw, result.thought)
        return ExpansionReply(
            raw=raw,
            text=reply.answer,
            reasoning=reply.reasoning,
            usage=to_usage(result.usage),
            latency=time.monotonic() - started,
            cut_off=result.finish_reason == "length" or reply.unfinished,
        )
