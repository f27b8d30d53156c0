"""Judging one step: what a judge is shown (`StepUnderReview`), what it gives back
(`CriticTurn`), and what a session asks of any judge (`StepJudge`): the critic agent
and the rollout judge both fit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from autogen_core import CancellationToken

from journey.agents.verifier import AnswerVerifier
from journey.protocols import (
    Action,
    LabelScoring,
    LabelSource,
    ProtocolViolation,
    RolloutTally,
    StepVerdict,
    TokenUsage,
    step_line,
    step_lines,
)

__all__ = ["CriticTurn", "StepJudge", "StepUnderReview"]


@dataclass(frozen=True)
class CriticTurn:
    """The critic's judgement of one step."""

    verdict: StepVerdict
    action: Action
    reason: str
    raw: str
    usage: TokenUsage
    latency: float
    label_scores: dict[str, float] | None = None
    label_scoring: LabelScoring | None = None
    """How `label_scores` were computed (the client's `label_scoring`)."""
    violations: tuple[ProtocolViolation, ...] = ()
    source: LabelSource = LabelSource.CRITIC
    """The evidence behind the verdict (`none` when it is unknown)."""
    reasoning: str = ""
    """The critic's thoughts before the reply that was kept (a reasoning model)."""
    reward: float | None = None
    """The judge's own estimate of the step's worth in [0, 1] (a rollout judge's share
    of completions that reached the answer); None: the strategy derives one."""
    rollouts: RolloutTally | None = None
    """The completions behind a rollout judge's verdict."""


@dataclass(frozen=True)
class StepUnderReview:
    """What the critic is shown: the problem, the path so far and the newest step."""

    problem: str
    previous_steps: Sequence[str]
    step_number: int
    text: str
    final_answer: str | None = None
    may_terminate: bool = False
    """True when `terminate` is a legal action (accepting a final answer with no gold)."""
    verifier: AnswerVerifier | None = None
    """The problem's verifier, for a judge that checks answers (rollouts); a critic
    never sees the gold answer."""

    def numbered_steps(self) -> str:
        """The path as the judge is shown it: "Step k: ..." lines, the newest last."""
        return "\n".join([*step_lines(self.previous_steps), step_line(self.step_number, self.text)])


class StepJudge(Protocol):
    """What a session asks to judge a step: the critic agent, or the rollout judge."""

    async def judge(
        self, review: StepUnderReview, cancellation_token: CancellationToken | None = None
    ) -> CriticTurn: ...
