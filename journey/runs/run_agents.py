"""The agents of a synthesis run, built from its options: the policy, and the judge of
its steps (the critic agent, or the rollout judge a `rollout:` critic spec names)."""

from __future__ import annotations

from autogen_core.models import ChatCompletionClient

from journey.agents import CriticAgent, PolicyAgent, RolloutJudge, StepJudge
from journey.agents.backends.role_endpoints import role_specs
from journey.runs.synthesis_options import SynthesisOptions

__all__ = ["policy_agent", "step_judge"]


def policy_agent(options: SynthesisOptions, client: ChatCompletionClient) -> PolicyAgent:
    """The policy; a `max_tokens` in its spec wins over `step_tokens`."""
    return PolicyAgent(
        client, max_tokens=role_specs(options.policy)[0].reply_tokens(options.step_tokens)
    )


def step_judge(options: SynthesisOptions, client: ChatCompletionClient) -> StepJudge:
    """The critic agent, or the rollout judge completing solutions with `client`."""
    rollout = options.rollout
    if rollout is not None:
        return RolloutJudge(client, rollout.settings)
    return CriticAgent(
        client,
        mode=options.critic_mode,
        max_tokens=role_specs(options.critic)[0].reply_tokens(options.critic_tokens),
        max_reasks=options.critic_reasks,
    )
