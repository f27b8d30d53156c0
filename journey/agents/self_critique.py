"""A policy that critiques its own step and chooses the next action in the same reply.

The propose-critique strategy has no separate critic: each
reply holds the next numbered step and the policy's own check of it, ending with
the action it chooses, e.g.::

    Step 3: 4 * 5 = 20.
    Check: 4 fives are 20, so the product is right.
    ACTION: continue

`SelfCritiquePolicy` is a `PolicyAgent` with other prompts, more room per reply, and a
parser that keeps only the step for the tree; the session reads the check from the
verbatim reply (`journey.protocols.parsing.parse_self_critique_reply`).
"""

from __future__ import annotations

from autogen_core.models import AssistantMessage, ChatCompletionClient, UserMessage

from journey.agents.policy import PolicyAgent
from journey.agents.prompt_sets import PromptSet, load_prompts
from journey.protocols import Action, Backtrack, Continue, Reflect, Terminate, step_line
from journey.protocols.parsing import ParsedStep, parse_self_critique_reply

CHECK_TOKENS = 64
"""Tokens added to the policy's step budget for the check and the action."""


class SelfCritiquePolicy(PolicyAgent):
    """Proposes one step per turn together with its own check and chosen action.

    Args:
        model_client: Any AutoGen chat completion client.
        max_tokens: Generation limit for one reply (step + check).
        temperature: Sampling temperature; None keeps the client's default.
        max_reasks: How often an unusable, repeated or echoed step is asked again.
    """

    def __init__(
        self,
        model_client: ChatCompletionClient,
        *,
        name: str = "policy",
        max_tokens: int = 160 + CHECK_TOKENS,
        temperature: float | None = None,
        max_reasks: int = 2,
        prompts: PromptSet | None = None,
    ) -> None:
        super().__init__(
            model_client,
            name=name,
            max_tokens=max_tokens,
            temperature=temperature,
            max_reasks=max_reasks,
            prompts=prompts or load_prompts("self_critique"),
        )

    @classmethod
    def from_policy(cls, policy: PolicyAgent) -> SelfCritiquePolicy:
        """The self-critiquing variant of `policy`: same model and sampling, room for a check.

        A `SelfCritiquePolicy` is returned as it is.
        """
        if isinstance(policy, SelfCritiquePolicy):
            return policy
        return cls(
            policy.model_client,
            name=policy.name,
            max_tokens=policy.max_tokens + CHECK_TOKENS,
            temperature=policy.temperature,
            max_reasks=policy.max_reasks,
        )

    def parse_reply(self, raw: str, step_number: int) -> ParsedStep:
        """Only the step goes to the tree; the check is read by the session."""
        return parse_self_critique_reply(raw, step_number).step

    def feedback(self, template: str, **fields: object) -> UserMessage:
        """The next instruction. It speaks for the policy's own decision (or the verifier),
        so it comes from the user, not from a critic."""
        return UserMessage(content=self.prompts.format(template, **fields), source="user")

    @staticmethod
    def as_reviewed(step_number: int, content: str, check: str, action: Action) -> AssistantMessage:
        """How a step and its check stand in the dialogue: in the canonical format, so the
        model keeps seeing replies written as it is asked to write them."""
        lines = [step_line(step_number, content)]
        if check:
            lines.append(f"Check: {check}")
        lines.append(f"ACTION: {action_text(action)}")
        return AssistantMessage(content="\n".join(lines), source="policy")


def action_text(action: Action) -> str:
    """An action as the policy writes it after `ACTION:`."""
    if isinstance(action, Backtrack):
        return f"backtrack {action.to_step}"
    if isinstance(action, Reflect | Continue | Terminate):
        return action.action
    raise TypeError(f"not an action: {action!r}")
