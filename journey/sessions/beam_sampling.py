"""What the policy is asked when beam search extends a node, and which samples are new."""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core.models import LLMMessage

from journey.agents import PolicyAgent, PolicyMessages
from journey.agents.policy import PolicyTurn
from journey.protocols import ProtocolViolation, TokenUsage
from journey.protocols.parsing import ParsedStep
from journey.sessions.beam_select import normalise_step
from journey.sessions.tree import ReasoningTree


def path_dialogue(
    policy: PolicyAgent | PolicyMessages, tree: ReasoningTree, node_id: int
) -> list[LLMMessage]:
    """The policy's conversation for extending `node_id`: its path, each step accepted.

    Unlike a debate, the policy sees no failed siblings here: each child is an
    independent sample of the next step of one path. `policy` is the agent, or its
    messages alone (an export writing rows the policy would be asked with).
    """
    messages = policy.opening(tree.problem)
    for step in tree.path(node_id)[1:]:
        parsed = ParsedStep(content=step.text, final_answer=step.final_answer, violations=())
        messages.append(policy.as_assistant(step.depth, parsed))
        messages.append(policy.feedback("continue", step=step.depth, next_step=step.depth + 1))
    return messages


def distinct_samples(
    tree: ReasoningTree, parent_id: int, samples: Sequence[PolicyTurn]
) -> tuple[list[PolicyTurn], list[ProtocolViolation], TokenUsage]:
    """The samples that make new children of `parent_id`, in order.

    A sample is dropped when it gives no usable step, repeats a child of the parent (one
    already in the tree or an earlier sample) or restates a step on the parent's path,
    case and spacing aside: the policy is asked again for those, but a small model may
    give one still, and a restated step would stand twice in the path's shortcut.

    Returns:
        The kept samples, one violation per dropped sample, and the dropped samples' usage.
    """
    seen = {normalise_step(c.text) for c in tree.children(parent_id)}
    on_path = {normalise_step(n.text) for n in tree.path(parent_id)[1:]}
    kept: list[PolicyTurn] = []
    dropped: list[ProtocolViolation] = []
    usage = TokenUsage()
    for turn in samples:
        key = normalise_step(turn.step.content)
        if not turn.step.usable:
            kind, detail = "unusable_sample", f"no usable step in {turn.raw[:80]!r}"
        elif key in seen:
            kind, detail = "duplicate_sibling", f"repeats a sibling: {turn.step.content[:80]!r}"
        elif key in on_path:
            kind, detail = "restated_step", f"restates its path: {turn.step.content[:80]!r}"
        else:
            seen.add(key)
            kept.append(turn)
            continue
        dropped.append(ProtocolViolation(kind=kind, detail=detail, repaired=True))
        usage = usage + turn.usage
    return kept, dropped, usage
