"""Agents and model backends. Agents talk to models; they write no files."""

from journey.agents.critic import (
    DEFAULT_CRITIC_TOKENS,
    CriticAgent,
    CriticMode,
    step_under_judgement,
)
from journey.agents.policy import PolicyAgent, PolicyTurn
from journey.agents.rollout_judge import (
    ROLLOUT_PREFIX,
    RolloutJudge,
    RolloutSettings,
    RolloutSpec,
    parse_rollout_spec,
)
from journey.agents.step_judge import CriticTurn, StepJudge, StepUnderReview
from journey.agents.verifier import AnswerVerifier, Verification, answers_match

__all__ = [
    "DEFAULT_CRITIC_TOKENS",
    "ROLLOUT_PREFIX",
    "AnswerVerifier",
    "CriticAgent",
    "CriticMode",
    "CriticTurn",
    "PolicyAgent",
    "PolicyTurn",
    "RolloutJudge",
    "RolloutSettings",
    "RolloutSpec",
    "StepJudge",
    "StepUnderReview",
    "Verification",
    "answers_match",
    "parse_rollout_spec",
    "step_under_judgement",
]
