"""What an action on a step does in a debate, whoever judged the step.

A judge's verdict becomes an action (`critic_action`, `verifier_action`); applied, the
action moves the cursor (`cursor_after`), is described in the log (`action_note`), may
end the session (`stop_after`) and tells the policy what to write next
(`policy_feedback`). Running and restoring a debate (or a propose-critique session,
which is a debate with another judge) both read these; an expansion's hindsight actions
are described as a debate's (`action_note`).
"""

from __future__ import annotations

from autogen_core.models import LLMMessage

from journey.agents import PolicyAgent
from journey.protocols import (
    Action,
    Backtrack,
    Continue,
    Outcome,
    Reflect,
    Role,
    StepVerdict,
    StopReason,
    Terminate,
    wrong_answer_note,
)
from journey.sessions.base import SessionStop
from journey.sessions.tree import ReasoningTree, TreeNode

__all__ = [
    "action_note",
    "critic_action",
    "cursor_after",
    "policy_feedback",
    "stop_after",
    "verifier_action",
]

_NO_CRITIQUE = "it does not follow from the steps before it."


def verifier_action(node: TreeNode, correct: bool) -> Action:
    """What a verifier result does: a correct answer ends the session, a wrong one is
    rewritten (the note goes on the node)."""
    if correct:
        return Terminate(answer=node.final_answer)
    return Reflect(critique=wrong_answer_note(node.final_answer))


def critic_action(node: TreeNode, action: Action, verdict: StepVerdict, reason: str) -> Action:
    """The action a judge's verdict on `node` leads to: its own, except that a final answer
    judged correct (no gold answer) ends the session."""
    if node.is_final and verdict is StepVerdict.CORRECT:
        return Terminate(answer=node.final_answer, reason=reason or None)
    return action


def stop_after(node: TreeNode, action: Action, source: Role) -> SessionStop | None:
    """How the session ends after `action` on `node`, or None when it goes on."""
    if not isinstance(action, Terminate):
        return None
    if source is Role.VERIFIER:
        return SessionStop(StopReason.VERIFIED_ANSWER, Outcome.SOLVED, final_node=node.id)
    if node.is_final and node.verdict is StepVerdict.CORRECT:
        # Only an answer judged correct is accepted: a terminate with no readable
        # verdict gives up rather than vouch for an answer nobody judged.
        return SessionStop(StopReason.ANSWER_ACCEPTED, Outcome.UNVERIFIED, final_node=node.id)
    return SessionStop(StopReason.CRITIC_TERMINATED, Outcome.FAILED)


def cursor_after(tree: ReasoningTree, node: TreeNode, action: Action) -> int:
    """Where an action on `node` leaves the cursor: on it, or up its path."""
    if isinstance(action, Reflect):
        return tree.path(node.id)[node.depth - 1].id
    if isinstance(action, Backtrack):
        return tree.path(node.id)[action.to_step].id
    return node.id


def action_note(step: int, action: Action) -> str:
    """What an action on step `step` (a node's depth) does to the path, in words, for the
    log's `action_applied`."""
    if isinstance(action, Reflect):
        return f"rewrite step {step}"
    if isinstance(action, Backtrack):
        return f"abandon steps {action.to_step + 1}..{step}"
    return ""


def policy_feedback(
    policy: PolicyAgent, node: TreeNode, action: Action, source: Role
) -> LLMMessage | None:
    """What the policy is told after an action on `node`: what to write next."""
    k = node.depth
    if isinstance(action, Continue):
        return policy.feedback("continue", step=k, next_step=k + 1)
    if isinstance(action, Reflect):
        if source is Role.VERIFIER:
            return policy.feedback("wrong_answer", answer=node.final_answer, step=k)
        critique = action.critique or _NO_CRITIQUE
        return policy.feedback("reflect", step=k, critique=critique)
    if isinstance(action, Backtrack):
        if action.to_step == k - 1:  # returning to the step before is rewriting this one
            template = "reflect"
        else:
            template = "restart" if action.to_step == 0 else "backtrack"
        return policy.feedback(
            template,
            step=k,
            to_step=action.to_step,
            next_step=action.to_step + 1,
            critique=action.critique or _NO_CRITIQUE,
        )
    return None
