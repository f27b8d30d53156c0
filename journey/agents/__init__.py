"""Agents and model backends. Agents talk to models; they write no files."""

from journey.agents.critic import (
    DEFAULT_CRITIC_TOKENS,
    CriticAgent,
    CriticMode,
    CriticTurn,
    StepUnderReview,
    step_under_judgement,
)
from journey.agents.policy import PolicyAgent, PolicyTurn
from journey.agents.verifier import AnswerVerifier, Verification, answers_match

__all__ = [
    "DEFAULT_CRITIC_TOKENS",
    "AnswerVerifier",
    "CriticAgent",
    "CriticMode",
    "CriticTurn",
    "PolicyAgent",
    "PolicyTurn",
    "StepUnderReview",
    "Verification",
    "answers_match",
    "step_under_judgement",
]
