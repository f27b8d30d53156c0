"""Agents and model backends. Agents talk to models; the files they write are these:

- The response cache: SQLite files (`responses.sqlite` unless told otherwise) in the
  cache directory its caller names (`backends.response_store.ResponseStore`; a run's
  `cache/`, or `--cache`).
- The logs of the model servers they start: `journey-vllm-*.log` and
  `journey-llama-*.log` in the system's temporary directory (`tempfile`), removed when
  the server stops, kept when it failed so that the error can name them.

The embedded model's weights are fetched and cached by `journey.engine.model_store`
under `journey_cache_dir()`, not here; the backends only ask for them.
"""

from journey.agents.critic import (
    DEFAULT_CRITIC_TOKENS,
    CriticAgent,
    CriticMode,
    step_under_judgement,
)
from journey.agents.policy import PolicyAgent, PolicyMessages, PolicyTurn
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
    "PolicyMessages",
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
