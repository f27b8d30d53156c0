"""Judges' actions the tree cannot take, repaired and recorded.

A critic (or a policy checking itself) may pick an action that is not legal where it
stands: a backtrack to the step under review or past it, or a `terminate` when a gold
answer means only the verifier may end the session. `legalise_action` turns each into
the nearest legal action and says so in a `ProtocolViolation`, so the repair is counted
and the log shows what the judge wrote.
"""

from __future__ import annotations

from journey.protocols import (
    Action,
    Backtrack,
    Continue,
    ProtocolViolation,
    Reflect,
    StepVerdict,
    Terminate,
)
from journey.sessions.tree import TreeNode

__all__ = ["legalise_action"]


def legalise_action(
    node: TreeNode, action: Action, verdict: StepVerdict, *, has_verifier: bool
) -> tuple[Action, StepVerdict, list[ProtocolViolation]]:
    """Check a judge's action on `node` against the tree; repair what is illegal, and say so.

    Args:
        node: The step under review.
        action: The action the judge chose.
        verdict: The judge's verdict on the step.
        has_verifier: The session has a gold answer (only the verifier ends it).
    """
    violations: list[ProtocolViolation] = []
    if isinstance(action, Backtrack) and action.to_step >= node.depth:
        violations.append(
            ProtocolViolation(
                kind="illegal_backtrack_target",
                detail=f"backtrack to step {action.to_step} from step {node.depth}; "
                f"read as backtrack to step {node.depth - 1}",
                repaired=True,
            )
        )
        action = Backtrack(to_step=node.depth - 1, critique=action.critique)
    if isinstance(action, Terminate) and has_verifier:
        replacement: Action = (
            Reflect(critique=action.reason or "")
            if verdict is StepVerdict.INCORRECT
            else Continue()
        )
        violations.append(
            ProtocolViolation(
                kind="premature_terminate",
                detail="only the verifier ends a session with a gold answer; "
                f"read as {replacement.action}",
                repaired=True,
            )
        )
        action = replacement
    return action, verdict, violations
