"""The critic agent: judges the newest step and chooses the protocol action.

Two ways to reach a verdict:

- **generate**: the critic writes `VERDICT / ACTION / REASON` and the reply is
  parsed tolerantly; an unparseable reply is asked again `max_reasks` times and
  then falls back to `continue` with verdict `unknown` and label source `none`
  (recorded as a violation), so a session never stalls on a critic that ignores
  the format, and a step nobody could judge is never labelled correct. A reasoning
  critic's thoughts (`<think>…</think>`, or the server's `reasoning_content`) are
  kept apart and never parsed; `max_tokens` leaves them room to finish, and a reply
  cut off before its answer is recorded as `truncated_reply`.
- **score**: for backends that expose log-probabilities, the action labels are
  ranked in one forward pass (a weak model ranks far better than it formats),
  a backtrack target is ranked the same way, and only the free-text reason is
  generated. With `calibrate`, the scores are calibrated (Zhao et al., 2021,
  "Calibrate Before Use"): the label scores on a content-free step ("N/A") are
  subtracted, so the choice follows the step rather than the model's standing
  preference for one label. It costs one more forward pass, and on the 135M
  embedded model it only trades "always continue" for "almost always reflect"
  (measured on four easy problems), so it is off by default.

`auto` scores when the client can, and generates otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum

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
from journey.agents.backends.base import LabelScoringClient, can_score_labels
from journey.agents.prompt_sets import PromptSet, load_prompts
from journey.agents.step_judge import CriticTurn, StepUnderReview
from journey.errors import ConfigError
from journey.protocols import (
    Action,
    ActionName,
    Backtrack,
    Continue,
    LabelSource,
    ProtocolViolation,
    Reflect,
    StepVerdict,
    Terminate,
    TokenUsage,
    newest_step,
    split_reasoning,
)
from journey.protocols.parsing import parse_critic_reply

# How the default judge prompt (prompts/critic.yaml) closes, after the newest step.
_JUDGE_MARK = "Judge only the newest step"

DEFAULT_CRITIC_TOKENS = 1024
"""Generation limit for a verdict: room for a reasoning model to think, then answer.
A plain critic stops after its three fields; the limit only bounds one that rambles."""


class CriticMode(StrEnum):
    AUTO = "auto"
    GENERATE = "generate"
    SCORE = "score"


class CriticAgent(BaseChatAgent):
    """Judges each policy step and chooses continue / reflect / backtrack / terminate.

    Args:
        model_client: Any AutoGen chat completion client.
        mode: `auto`, `generate` or `score` (see the module docstring).
        max_tokens: Generation limit for a full verdict, thoughts included.
        reason_max_tokens: Generation limit for the reason in score mode.
        max_reasks: How often an unparseable verdict is asked again.
        calibrate: In score mode, subtract the label scores of a content-free step.
    """

    def __init__(
        self,
        model_client: ChatCompletionClient,
        *,
        name: str = "critic",
        mode: CriticMode | str = CriticMode.AUTO,
        max_tokens: int = DEFAULT_CRITIC_TOKENS,
        reason_max_tokens: int = 48,
        temperature: float | None = None,
        max_reasks: int = 1,
        calibrate: bool = False,
        prompts: PromptSet | None = None,
    ) -> None:
        super().__init__(name, "Judges the newest step and chooses the protocol action.")
        self.calibrate = calibrate
        self.model_client = model_client
        self.mode = CriticMode(mode)
        if self.mode is CriticMode.SCORE and not can_score_labels(model_client):
            raise ConfigError(
                "critic mode 'score' needs a backend with log-probabilities "
                f"({type(model_client).__name__} has none); use 'generate' or 'auto'"
            )
        self.max_tokens = max_tokens
        self.reason_max_tokens = reason_max_tokens
        self.temperature = temperature
        self.max_reasks = max_reasks
        self.prompts = prompts or load_prompts("critic")

    @property
    def scores_labels(self) -> bool:
        return self.mode is CriticMode.SCORE or (
            self.mode is CriticMode.AUTO and can_score_labels(self.model_client)
        )

    def messages_for(self, review: StepUnderReview) -> list[LLMMessage]:
        # The newest step closes the list and the instruction comes after it, so the
        # next turn's prompt starts with this one's steps: a server's prefix cache
        # reuses everything up to the step being judged.
        prompt = self.prompts.format(
            "judge",
            problem=review.problem,
            steps=review.numbered_steps(),
            step_number=review.step_number,
        )
        return [
            SystemMessage(content=self.prompts.format("system")),
            UserMessage(content=prompt, source="user"),
        ]

    async def judge(
        self, review: StepUnderReview, cancellation_token: CancellationToken | None = None
    ) -> CriticTurn:
        started = time.monotonic()
        messages = self.messages_for(review)
        if self.scores_labels:
            turn = await self._judge_by_scores(review, messages, cancellation_token)
        else:
            turn = await self._judge_by_generation(review, messages, cancellation_token)
        return replace(turn, latency=time.monotonic() - started)

    # -- generate ---------------------------------------------------------------------------

    def _create_args(self, max_tokens: int) -> dict[str, object]:
        args: dict[str, object] = {"max_tokens": max_tokens}
        if self.temperature is not None:
            args["temperature"] = self.temperature
        return args

    async def _judge_by_generation(
        self,
        review: StepUnderReview,
        messages: list[LLMMessage],
        cancellation_token: CancellationToken | None,
    ) -> CriticTurn:
        usage = TokenUsage()
        violations: list[ProtocolViolation] = []
        for attempt in range(self.max_reasks + 1):
            result = await self.model_client.create(
                messages,
                extra_create_args=self._create_args(self.max_tokens),
                cancellation_token=cancellation_token,
            )
            raw = result.content if isinstance(result.content, str) else ""
            reply = split_reasoning(raw, result.thought)
            usage = usage + to_usage(result.usage)
            parsed = parse_critic_reply(raw, current_step=review.step_number)
            violations.extend(parsed.violations)
            if result.finish_reason == "length" and (reply.unfinished or not reply.answer):
                violations.append(
                    ProtocolViolation(
                        kind="truncated_reply",
                        detail=f"the reply reached the {self.max_tokens}-token limit before "
                        "giving an answer; a reasoning critic needs a higher limit",
                        repaired=False,
                    )
                )
            if parsed.action is not None:
                return CriticTurn(
                    verdict=parsed.verdict,
                    action=parsed.action,
                    reason=parsed.reason,
                    raw=raw,
                    usage=usage,
                    latency=0.0,
                    violations=tuple(violations),
                    source=parsed.source,
                    reasoning=reply.reasoning,
                )
            if attempt < self.max_reasks:
                messages = [
                    *messages,
                    # The answer alone goes back: a reasoning model is never shown its thoughts.
                    AssistantMessage(content=reply.answer or "…", source=self.name),
                    UserMessage(content=self.prompts.format("reask"), source="user"),
                ]
        violations.append(
            ProtocolViolation(
                kind="fallback_continue",
                detail=f"no verdict after {self.max_reasks + 1} replies; the step is kept "
                "with verdict 'unknown' (label source 'none')",
                repaired=True,
            )
        )
        return CriticTurn(
            verdict=StepVerdict.UNKNOWN,
            action=Continue(),
            reason="",
            raw=raw,
            usage=usage,
            latency=0.0,
            violations=tuple(violations),
            source=LabelSource.NONE,
            reasoning=reply.reasoning,
        )

    # -- score ------------------------------------------------------------------------------

    async def _judge_by_scores(
        self,
        review: StepUnderReview,
        messages: list[LLMMessage],
        cancellation_token: CancellationToken | None,
    ) -> CriticTurn:
        client = self.model_client
        assert isinstance(client, LabelScoringClient)
        labels = [ActionName.CONTINUE, ActionName.REFLECT]
        if review.step_number > 1:  # at step 1, going back is the same as reflecting
            labels.append(ActionName.BACKTRACK)
        if review.may_terminate:
            labels.append(ActionName.TERMINATE)
        names = [str(x) for x in labels]
        scores = await client.score_labels(messages, names, prefix="ACTION: ")
        usage = TokenUsage(prompt_tokens=client_prompt_tokens(self.model_client, messages))
        if self.calibrate:
            blank = self.messages_for(replace(review, text="N/A"))
            prior = await client.score_labels(blank, names, prefix="ACTION: ")
            scores = {label: scores[label] - prior[label] for label in names}
            usage = usage + TokenUsage(prompt_tokens=client_prompt_tokens(self.model_client, blank))
        choice = ActionName(max(scores, key=scores.__getitem__))
        to_step = review.step_number - 1
        if choice is ActionName.BACKTRACK and review.step_number > 1:
            targets = [str(k) for k in range(review.step_number)]
            target_scores = await client.score_labels(
                messages, targets, prefix="ACTION: backtrack "
            )
            to_step = int(max(target_scores, key=target_scores.__getitem__))
            usage = usage + TokenUsage(
                prompt_tokens=client_prompt_tokens(self.model_client, messages)
            )
        verdict = (
            StepVerdict.CORRECT
            if choice in (ActionName.CONTINUE, ActionName.TERMINATE)
            else StepVerdict.INCORRECT
        )
        ask_reason = UserMessage(
            content=self.prompts.format(
                "reason", step_number=review.step_number, verdict=verdict.value
            ),
            source="user",
        )
        result = await self.model_client.create(
            [*messages, ask_reason],
            extra_create_args={**self._create_args(self.reason_max_tokens), "stop": ["\n"]},
            cancellation_token=cancellation_token,
        )
        content = result.content if isinstance(result.content, str) else ""
        reason = split_reasoning(content, result.thought).answer
        usage = usage + to_usage(result.usage)
        action = _build_action(choice, to_step, reason, review.final_answer)
        target = f" {to_step}" if choice is ActionName.BACKTRACK else ""
        return CriticTurn(
            verdict=verdict,
            action=action,
            reason=reason,
            raw=f"VERDICT: {verdict.value}\nACTION: {choice.value}{target}\nREASON: {reason}",
            usage=usage,
            latency=0.0,
            label_scores={str(k): v for k, v in scores.items()},
            label_scoring=client.label_scoring,
            source=LabelSource.CRITIC_ACTION,
        )

    # -- AutoGen chat-agent surface ---------------------------------------------------------

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    async def on_messages(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> Response:
        """In an AutoGen team: the first message is the problem, the last one the step to judge."""
        texts = [m.to_model_text() for m in messages]
        problem, steps = (texts[0], texts[1:]) if len(texts) > 1 else ("", texts)
        review = StepUnderReview(
            problem=problem,
            previous_steps=steps[:-1],
            step_number=len(steps),
            text=steps[-1] if steps else "",
        )
        turn = await self.judge(review, cancellation_token)
        return Response(chat_message=TextMessage(content=turn.raw, source=self.name))

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        return None


def step_under_judgement(messages: Sequence[LLMMessage]) -> str:
    """The newest step ("Step N: ...") in a prompt built by `CriticAgent.messages_for`.

    For scripted critics (tests, benchmark servers) that answer by looking at the step;
    the whole text of the last user message when it holds no judge prompt.
    """
    prompts = [str(m.content) for m in messages if isinstance(m, UserMessage)]
    judge = next((p for p in reversed(prompts) if _JUDGE_MARK in p), prompts[-1] if prompts else "")
    steps = judge.rsplit(_JUDGE_MARK, 1)[0]
    return newest_step(steps)


def client_prompt_tokens(client: ChatCompletionClient, messages: Sequence[LLMMessage]) -> int:
    """Prompt tokens of a scoring pass; 0 when the client cannot count."""
    try:
        return client.count_tokens(messages)
    except (NotImplementedError, ValueError):
        return 0


def _build_action(
    choice: ActionName, to_step: int, reason: str, final_answer: str | None
) -> Action:
    if choice is ActionName.CONTINUE:
        return Continue()
    if choice is ActionName.REFLECT:
        return Reflect(critique=reason)
    if choice is ActionName.BACKTRACK:
        return Backtrack(to_step=to_step, critique=reason)
    return Terminate(answer=final_answer, reason=reason or None)
