"""What a debate's policy is shown before it writes a step (config `policy_context`).

- `dialogue` (the default): the whole conversation, rejected steps and critiques
  included, as the seed's proposal-critique loop has it. A strong policy learns from
  its failed attempts.
- `path`: the steps on the current path, each accepted, as beam search shows them, and
  then the newest instruction (the critique of the step it must rewrite, or where to
  go back to), never the rejected step itself. A small policy copies what it sees: on
  24 products the 135M model repeated a rejected step in 169 of 277 requests when it
  saw them (docs/benchmarks.md).
- `fresh`: the steps on the current path alone, exactly as beam search asks for a
  child: a rejected step is sampled again from the path (each request has a seed of its
  own), the critique unseen. A policy that cannot use a critique is then a sequential
  sampler whose every draw the critic checks; the critique still goes into the long
  thought, which is written from the dialogue.

Only what the policy is asked changes: the tree, the events and the long thought are
the same either way, so the view is rebuilt from the tree and the dialogue each turn
and a restored session needs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autogen_core.models import LLMMessage, UserMessage

from journey.agents import PolicyAgent
from journey.errors import ConfigError
from journey.sessions.beam_sampling import path_dialogue
from journey.sessions.tree import ReasoningTree

__all__ = ["POLICY_CONTEXTS", "POLICY_CONTEXT_KEY", "PolicyView", "with_instruction"]

POLICY_CONTEXTS = ("dialogue", "path", "fresh")
POLICY_CONTEXT_KEY = "policy_context"
"""The session config key (and `strategy_config` key) that names the view."""


@dataclass(frozen=True)
class PolicyView:
    """How the policy's messages are built from the session (see the module docstring)."""

    context: str = "dialogue"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PolicyView:
        """The view a session's config asks for.

        Raises:
            ConfigError: an unknown `policy_context`.
        """
        context = config.get(POLICY_CONTEXT_KEY, "dialogue")
        if context not in POLICY_CONTEXTS:
            choose = " or ".join(POLICY_CONTEXTS)
            raise ConfigError(f"unknown {POLICY_CONTEXT_KEY} {context!r}; choose {choose}")
        return cls(str(context))

    def messages(
        self, policy: PolicyAgent, tree: ReasoningTree, dialogue: Sequence[LLMMessage]
    ) -> Sequence[LLMMessage]:
        """The messages the policy is asked with for the step after the tree's cursor."""
        if self.context == "dialogue":
            return dialogue
        messages = path_dialogue(policy, tree, tree.cursor)
        if self.context == "path":
            return with_instruction(messages, dialogue[-1])
        return messages


def with_instruction(messages: list[LLMMessage], newest: LLMMessage) -> list[LLMMessage]:
    """A path's messages, their last user turn followed by `newest` when it is not the
    plain "write the next step" the path ends with (a critique, a wrong answer, a way
    back): in one user turn, so strict chat templates still alternate."""
    last = messages[-1]
    if newest.content == last.content:
        return messages
    merged = UserMessage(content=f"{last.content}\n\n{newest.content}", source="critic")
    return [*messages[:-1], merged]
