"""The policy agent: proposes one numbered reasoning step per turn."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from journey.agents._usage import to_usage
from journey.agents.prompt_sets import PromptSet, load_prompts
from journey.protocols import (
    ProtocolViolation,
    TokenUsage,
    next_step_stops,
    split_reasoning,
    step_line,
)
from journey.protocols.parsing import ParsedStep, parse_policy_reply


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _repetition(
    step: ParsedStep, rejected: set[str], instruction: set[str]
) -> ProtocolViolation | None:
    """A usable step that repeats a rejected alternative or echoes the instruction
    (`instruction` holds its normalised text and each of its normalised lines)."""
    content = _normalise(step.content)
    if not content:
        return None
    if content in rejected:
        return ProtocolViolation(
            kind="repeated_step",
            detail=f"repeats a rejected or earlier step: {step.content[:80]!r}",
            repaired=False,
        )
    if content in instruction:
        return ProtocolViolation(
            kind="echoed_instruction",
            detail=f"echoes the instruction instead of solving: {step.content[:80]!r}",
            repaired=False,
        )
    return None


@dataclass(frozen=True)
class PolicyMessages:
    """The messages a policy is shown, from its prompt set alone: the opening, each
    instruction, its own kept steps. An export writes rows in them with no model."""

    prompts: PromptSet
    name: str = "policy"

    def opening(self, problem: str) -> list[LLMMessage]:
        """The system prompt, the worked example, and the problem."""
        example: list[LLMMessage] = [
            UserMessage(content=text, source="user")
            if role == "user"
            else AssistantMessage(content=text, source=self.name)
            for role, text in self.prompts.example
        ]
        return [
            SystemMessage(content=self.prompts.format("system")),
            *example,
            UserMessage(content=self.prompts.format("opening", problem=problem), source="user"),
        ]

    def feedback(self, template: str, **fields: object) -> UserMessage:
        """A feedback message from the `template` of the policy's prompts."""
        return UserMessage(content=self.prompts.format(template, **fields), source="critic")

    @staticmethod
    def as_assistant(step_number: int, step: ParsedStep) -> AssistantMessage:
        """How a kept step enters the dialogue: relabelled, so the history stays well formed."""
        return AssistantMessage(content=step_line(step_number, step.content), source="policy")


@dataclass(frozen=True)
class PolicyTurn:
    """One policy turn: the reply that was kept, parsed, with its cost."""

    raw: str
    step: ParsedStep
    usage: TokenUsage
    latency: float
    attempts: int
    violations: tuple[ProtocolViolation, ...] = field(default_factory=tuple)
    """Violations of this turn, including those of replies that were re-asked."""
    reasoning: str = ""
    """The model's thoughts before the kept reply (a reasoning model); never parsed."""


class PolicyAgent(BaseChatAgent):
    """Proposes the next step of a solution, given the whole dialogue so far.

    The dialogue is the journey: the policy sees its own steps, abandoned ones
    included, and every piece of feedback. The engine owns that conversation and
    passes it in; the agent adds the prompts and parses the reply.

    Args:
        model_client: Any AutoGen chat completion client.
        max_tokens: Generation limit for one step.
        temperature: Sampling temperature; None keeps the client's default.
        max_reasks: How often an unusable, repeated or echoed reply is asked again.
        repeat_temperature: The temperature of a re-ask after a repeated or echoed reply,
            unless the turn's own is higher. A greedy policy re-asked with nearly the
            same dialogue writes the same step again, so the re-ask samples; None
            re-asks at the turn's temperature.
    """

    def __init__(
        self,
        model_client: ChatCompletionClient,
        *,
        name: str = "policy",
        max_tokens: int = 160,
        temperature: float | None = None,
        max_reasks: int = 2,
        repeat_temperature: float | None = 0.7,
        prompts: PromptSet | None = None,
    ) -> None:
        super().__init__(name, "Proposes one numbered reasoning step per turn.")
        self.model_client = model_client
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_reasks = max_reasks
        self.repeat_temperature = repeat_temperature
        self.prompts = prompts or load_prompts("policy")
        self._chat: list[LLMMessage] = []
        self._opening_length = 0

    # -- the messages the engine adds to the dialogue ---------------------------------------

    def opening(self, problem: str) -> list[LLMMessage]:
        """The system prompt, the worked example, and the problem."""
        return PolicyMessages(self.prompts, self.name).opening(problem)

    def feedback(self, template: str, **fields: object) -> UserMessage:
        """A feedback message from the `template` of the policy's prompts."""
        return PolicyMessages(self.prompts, self.name).feedback(template, **fields)

    as_assistant = staticmethod(PolicyMessages.as_assistant)

    # -- proposing ------------------------------------------------------------------------

    def parse_reply(self, raw: str, step_number: int) -> ParsedStep:
        """The step a reply proposes; variants whose replies carry more override this."""
        return parse_policy_reply(raw, step_number)

    async def propose(
        self,
        dialogue: Sequence[LLMMessage],
        step_number: int,
        *,
        avoid: Sequence[str] = (),
        temperature: float | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> PolicyTurn:
        """Ask for step `step_number`.

        A reply is asked again, up to `max_reasks` times, when it is unusable (no step),
        when it repeats a step in `avoid` (rejected alternatives, steps already on the
        path), or when it only echoes the last instruction: small models loop on such
        replies forever.
        After that the last usable reply is kept, its violations recorded. A re-ask after
        a repetition samples at `repeat_temperature` at least.

        `temperature`, when given, overrides the agent's own for this call (beam search
        samples several different children of one step).
        """
        started = time.monotonic()
        # Stopping at the next step's label saves the tokens a model spends running ahead.
        stop = next_step_stops(step_number)
        args: dict[str, object] = {"max_tokens": self.max_tokens, "stop": stop}
        temperature = self.temperature if temperature is None else temperature
        if temperature is not None:
            args["temperature"] = temperature
        messages = list(dialogue)
        rejected = {_normalise(text) for text in avoid}
        last = str(messages[-1].content) if messages else ""
        instruction = {_normalise(line) for line in [last, *last.splitlines()]}
        usage = TokenUsage()
        violations: list[ProtocolViolation] = []
        attempt = 0
        while True:
            attempt += 1
            result = await self.model_client.create(
                messages, extra_create_args=args, cancellation_token=cancellation_token
            )
            raw = result.content if isinstance(result.content, str) else ""
            reply = split_reasoning(raw, result.thought)
            usage = usage + to_usage(result.usage)
            step = self.parse_reply(raw, step_number)
            violations.extend(step.violations)
            repeat = _repetition(step, rejected, instruction)
            if repeat is not None:
                violations.append(repeat)
            if (step.usable and repeat is None) or attempt > self.max_reasks:
                break
            nudge = "repeat" if repeat is not None else "reask"
            if repeat is not None and self.repeat_temperature is not None:
                args["temperature"] = max(self.repeat_temperature, temperature or 0.0)
            messages = [
                *messages,
                # The answer alone goes back: a reasoning model is never shown its thoughts.
                AssistantMessage(content=reply.answer or "…", source=self.name),
                UserMessage(content=self.prompts.format(nudge, step=step_number), source="user"),
            ]
        return PolicyTurn(
            raw=raw,
            step=step,
            usage=usage,
            latency=time.monotonic() - started,
            attempts=attempt,
            violations=tuple(violations),
            reasoning=reply.reasoning,
        )

    # -- AutoGen chat-agent surface ---------------------------------------------------------

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    async def on_messages(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> Response:
        """In an AutoGen team: the first message is the problem, later ones are feedback."""
        for message in messages:
            if not self._chat:
                self._chat = self.opening(message.to_model_text())
                self._opening_length = len(self._chat)
            else:
                self._chat.append(UserMessage(content=message.to_model_text(), source="user"))
        own_steps = self._chat[self._opening_length :]
        step_number = 1 + sum(isinstance(m, AssistantMessage) for m in own_steps)
        turn = await self.propose(self._chat, step_number, cancellation_token=cancellation_token)
        reply = self.as_assistant(step_number, turn.step)
        self._chat.append(reply)
        assert isinstance(reply.content, str)
        return Response(chat_message=TextMessage(content=reply.content, source=self.name))

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        self._chat = []
