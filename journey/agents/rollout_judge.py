"""Process labels from rollouts (Math-Shepherd, Wang et al., 2024): a step is worth
what the solutions finished from it are worth.

The policy model finishes the solution from the step `samples` times, sampled so the
completions differ, and the problem's verifier checks each final answer. The share
that reached the gold answer is the step's soft estimate (the verdict's `reward`); the
verdict is Math-Shepherd's hard estimate: correct when any completion reached the
answer, incorrect when none did. Either way the label's source is `rollout`, and the
tally rides with the verdict, so an export can tell a 1-in-8 step from an 8-in-8 one.

In a session (`--critic rollout:SPEC?n=8`) it judges like a critic: a step judged
correct is continued; one from which no completion found the answer is dropped and
tried again (reflect at step 1, otherwise backtrack to the step before). A final
answer is the verifier's to judge, not the rollouts'. With no gold answer there is
nothing to roll out against: the verdict is unknown, never correct.

Cost: up to `samples` completions of `max_tokens` tokens per judged step.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, LLMMessage, SystemMessage, UserMessage

from journey.agents._usage import to_usage
from journey.agents.prompt_sets import PromptSet, load_prompts
from journey.agents.step_judge import CriticTurn, StepUnderReview
from journey.agents.verifier import AnswerVerifier
from journey.errors import ModelSpecError
from journey.protocols import (
    Backtrack,
    Continue,
    LabelSource,
    ProtocolViolation,
    Reflect,
    RolloutTally,
    StepVerdict,
    TokenUsage,
    extract_final_answer,
    split_reasoning,
)

__all__ = [
    "ROLLOUT_PREFIX",
    "RolloutJudge",
    "RolloutSettings",
    "RolloutSpec",
    "parse_rollout_spec",
]

ROLLOUT_PREFIX = "rollout:"
"""A critic spec that starts so is a rollout judge over the model spec that follows."""


@dataclass(frozen=True)
class RolloutSettings:
    """How a step is rolled out: the options of a `rollout:` spec (`n`, `temperature`,
    `tokens`); every other option belongs to the model."""

    samples: int = 8
    temperature: float = 0.7
    """Completions are sampled: at temperature 0 all n would be one. 0.7 is the embedded
    model's own default, so a local model batches rollouts with the policy's requests
    (its engine batches requests of one temperature together)."""
    max_tokens: int = 512

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ModelSpecError(f"a rollout judge needs n >= 1 completions, got {self.samples}")
        if self.max_tokens < 1:
            raise ModelSpecError(f"rollout tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ModelSpecError(f"rollout temperature must be >= 0, got {self.temperature}")

    def record(self) -> dict[str, object]:
        """As run records and label files keep it."""
        return {"n": self.samples, "temperature": self.temperature, "tokens": self.max_tokens}


@dataclass(frozen=True)
class RolloutSpec:
    """A parsed `rollout:MODEL?n=8` critic spec."""

    model: str
    """The model spec that completes the solutions, its rollout options removed."""
    settings: RolloutSettings = field(default_factory=RolloutSettings)

    def __str__(self) -> str:
        joiner = "&" if "?" in self.model else "?"
        own = "&".join(f"{key}={value}" for key, value in self.settings.record().items())
        return f"{ROLLOUT_PREFIX}{self.model}{joiner}{own}"


_CONVERT = {"n": int, "temperature": float, "tokens": int}
_FIELD = {"n": "samples", "temperature": "temperature", "tokens": "max_tokens"}


def parse_rollout_spec(text: str) -> RolloutSpec | None:
    """The rollout judge a critic spec names; None when it names a plain critic.

    `rollout:embedded?n=8&tokens=256` completes with `embedded`; options `n`,
    `temperature` and `tokens` are the judge's, all others the model's.

    Raises:
        ModelSpecError: the spec names no model, or a judge option is not a number.
    """
    text = text.strip()
    if not text.startswith(ROLLOUT_PREFIX):
        return None
    body, _, query = text[len(ROLLOUT_PREFIX) :].partition("?")
    if not body:
        raise ModelSpecError(f"{text!r} names no model: try 'rollout:embedded?n=8'")
    kept: list[str] = []
    own: dict[str, object] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key not in _CONVERT:
            kept.append(pair)
            continue
        try:
            own[_FIELD[key]] = _CONVERT[key](value)
        except ValueError:
            raise ModelSpecError(f"bad rollout option {pair!r} in {text!r}") from None
    model = f"{body}?{'&'.join(kept)}" if kept else body
    return RolloutSpec(model=model, settings=RolloutSettings(**own))  # type: ignore[arg-type]


class RolloutJudge:
    """Judges a step by finishing the solution from it (see the module docstring).

    Args:
        model_client: The model that completes solutions (usually the policy's).
        settings: Completions per step, their temperature and length.
        prompts: The `rollout` prompt set (`system`, `complete`).
    """

    def __init__(
        self,
        model_client: ChatCompletionClient,
        settings: RolloutSettings | None = None,
        *,
        prompts: PromptSet | None = None,
    ) -> None:
        self.model_client = model_client
        self.settings = settings or RolloutSettings()
        self.prompts = (prompts or load_prompts("rollout")).require(("system", "complete"))

    def messages_for(self, review: StepUnderReview) -> list[LLMMessage]:
        prompt = self.prompts.format(
            "complete", problem=review.problem, steps=review.numbered_steps()
        )
        return [
            SystemMessage(content=self.prompts.format("system")),
            UserMessage(content=prompt, source="user"),
        ]

    async def judge(
        self, review: StepUnderReview, cancellation_token: CancellationToken | None = None
    ) -> CriticTurn:
        started = time.monotonic()
        verifier = review.verifier
        if verifier is None or verifier.gold_answer is None:
            return _unknown(
                "no_gold_answer",
                "a rollout judge checks completions against the gold answer, "
                "and this problem has none",
                started,
            )
        if review.final_answer is not None:
            return _final_answer(review, verifier, started)
        tally, usage, answers = await self.roll_out(review, verifier, cancellation_token)
        return _verdict(review, tally, usage, answers, started)

    async def roll_out(
        self,
        review: StepUnderReview,
        verifier: AnswerVerifier,
        cancellation_token: CancellationToken | None = None,
    ) -> tuple[RolloutTally, TokenUsage, list[str | None]]:
        """Finish the solution from the step `samples` times, at once; the tally, the
        usage and each completion's final answer (None: it gave none)."""
        messages = self.messages_for(review)
        args: dict[str, object] = {
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
        }
        results = await asyncio.gather(
            *(
                self.model_client.create(
                    messages, extra_create_args=args, cancellation_token=cancellation_token
                )
                for _ in range(self.settings.samples)
            )
        )
        usage = TokenUsage()
        answers: list[str | None] = []
        for result in results:
            usage = usage + to_usage(result.usage)
            raw = result.content if isinstance(result.content, str) else ""
            answers.append(extract_final_answer(split_reasoning(raw, result.thought).answer))
        correct = sum(1 for a in answers if a is not None and verifier.check(a).correct)
        tally = RolloutTally(
            samples=len(answers),
            correct=correct,
            unanswered=sum(1 for a in answers if a is None),
        )
        return tally, usage, answers


def _verdict(
    review: StepUnderReview,
    tally: RolloutTally,
    usage: TokenUsage,
    answers: list[str | None],
    started: float,
) -> CriticTurn:
    found = tally.correct > 0
    shown = ", ".join("-" if a is None else a for a in answers)
    reason = (
        f"{tally.correct} of {tally.samples} completions from this step reach the answer"
        if found
        else f"none of {tally.samples} completions from this step reaches the answer"
    )
    if found:
        action: Continue | Reflect | Backtrack = Continue()
    elif review.step_number > 1:
        action = Backtrack(to_step=review.step_number - 1, critique=reason)
    else:
        action = Reflect(critique=reason)
    verdict = StepVerdict.CORRECT if found else StepVerdict.INCORRECT
    return CriticTurn(
        verdict=verdict,
        action=action,
        reason=reason,
        raw=f"ROLLOUTS: {tally.correct}/{tally.samples} correct\nANSWERS: {shown}",
        usage=usage,
        latency=time.monotonic() - started,
        source=LabelSource.ROLLOUT,
        reward=tally.value,
        rollouts=tally,
    )


def _final_answer(review: StepUnderReview, verifier: AnswerVerifier, started: float) -> CriticTurn:
    """A step that gives the final answer needs no rollouts: the verifier judges it."""
    answer = review.final_answer or ""
    correct = verifier.check(answer).correct
    reason = f"the final answer {answer} is {'right' if correct else 'wrong'}"
    action: Continue | Reflect | Backtrack = Continue()
    if not correct:
        action = (
            Backtrack(to_step=review.step_number - 1, critique=reason)
            if review.step_number > 1
            else Reflect(critique=reason)
        )
    return CriticTurn(
        verdict=StepVerdict.CORRECT if correct else StepVerdict.INCORRECT,
        action=action,
        reason=reason,
        raw=f"VERIFIED: {answer}: {'correct' if correct else 'incorrect'}",
        usage=TokenUsage(),
        latency=time.monotonic() - started,
        source=LabelSource.VERIFIER,
        reward=1.0 if correct else 0.0,
    )


def _unknown(kind: str, detail: str, started: float) -> CriticTurn:
    return CriticTurn(
        verdict=StepVerdict.UNKNOWN,
        action=Continue(),
        reason="",
        raw="",
        usage=TokenUsage(),
        latency=time.monotonic() - started,
        violations=(ProtocolViolation(kind=kind, detail=detail, repaired=True),),
        source=LabelSource.NONE,
    )
