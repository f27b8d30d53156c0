"""Revision rows: a critique of a step, and a step that answers it.

A searched tree (beam) holds, under one step, children the critic rejected with a reason
and children the critic or the verifier accepted. A rejected child with the critic's
reason, beside an accepted sibling, is what a policy should do when told why its step is
wrong. Its row asks the policy exactly as a debate with `policy_context: path` does
after that critique: the path so far, then "The critic says step k is wrong: REASON.
Reconsider it and write Step k again, correctly."; its completion is the accepted step.
The siblings were sampled side by side, not one after the other: the row says what a
right answer to the critique is, not what the policy answered.

Why: the embedded model, and the models trained on its long thoughts, write the same
step whether or not they are shown the critique (docs/benchmarks.md), so a debate
costs as much per verified answer as independent samples do.

Only evidence makes a row: the rejected step is labelled incorrect and carries its
judge's reason (a verifier's "wrong answer" note names no error, so it makes none), and
the answering step is labelled correct. A critique that names a right value ("8 * 7 =
54 is false: 8 * 7 is 56") is answered only by a step that uses it: a row answering it
with another correct step would teach a policy to ignore the critique (the lesson of
the long thoughts, docs/experiment.md); when no accepted sibling uses it, the critique
is left out and counted. One row per rejected step; its answer is the accepted sibling
on the path to a verified answer when there is one, else the first. Every rejected step
that makes no row is counted by why (`Revisions.left_out`), so the card says how many
critiques the rows stand for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from autogen_core.models import LLMMessage

from journey.agents import PolicyMessages
from journey.agents.prompt_sets import load_prompts
from journey.engine.plain_prompt import message_role
from journey.exports.rows import StepLabels
from journey.protocols import LabelSource
from journey.protocols.arithmetic_claims import named_correction, states_number
from journey.protocols.parsing import ParsedStep
from journey.sessions.beam_sampling import path_dialogue
from journey.sessions.policy_view import with_instruction
from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "NOT_FOLLOWED",
    "NO_ACCEPTED_SIBLING",
    "NO_REASON",
    "VERIFIER_NOTE",
    "Revision",
    "Revisions",
    "default_policy_messages",
    "in_layout",
    "revision_row",
    "revisions",
]


@dataclass(frozen=True)
class Revision:
    """A rejected step with its critique, and the accepted sibling that answers it."""

    rejected: TreeNode
    revised: TreeNode


NOT_FOLLOWED = "critique not followed"
"""A critique naming a right value that no accepted sibling uses."""
NO_ACCEPTED_SIBLING = "no accepted sibling"
"""A critiqued step with no sibling accepted with evidence to answer it."""
NO_REASON = "rejected without a reason"
"""A step a critic rejected and said nothing about why."""
VERIFIER_NOTE = "rejected by the verifier alone"
"""A rejected final answer whose reason is the verifier's note ("your final answer is
incorrect"), which names no error to revise: a synthesis's verifier, not its critic,
judges final answers."""


@dataclass(frozen=True)
class Revisions:
    """A tree's revisions, and its rejected steps that make none, counted by why."""

    found: list[Revision]
    left_out: Counter[str] = field(default_factory=Counter)
    """Rejected steps without a row: `NOT_FOLLOWED`, `NO_ACCEPTED_SIBLING`, `NO_REASON`
    or `VERIFIER_NOTE`."""


def revisions(tree: ReasoningTree, labels: StepLabels) -> Revisions:
    """Every rejected step of `tree` with a judge's reason, answered by an accepted sibling
    (one using the value the reason names, when it names one)."""
    on_answer_path = {node.id for leaf in tree.correct_leaves() for node in tree.path(leaf.id)}
    found: list[Revision] = []
    left_out: Counter[str] = Counter()
    for parent in tree:
        children = tree.children(parent.id)
        accepted = [child for child in children if labels.of(child)[0] is NodeLabel.CORRECT]
        accepted.sort(key=lambda child: (child.id not in on_answer_path, child.id))
        for child in (c for c in children if c.label is NodeLabel.INCORRECT):
            why = _without_critique(child)
            if why is not None:
                left_out[why] += 1
                continue
            value = named_correction(child.text, child.reason)
            answers = [a for a in accepted if value is None or states_number(a.text, value)]
            if answers:
                found.append(Revision(child, answers[0]))
            else:
                left_out[NOT_FOLLOWED if accepted else NO_ACCEPTED_SIBLING] += 1
    return Revisions(found, +left_out)


def revision_row(revision: Revision, tree: ReasoningTree, policy: PolicyMessages) -> dict[str, Any]:
    """The row: what `policy` is asked after the critique, and the accepted step."""
    rejected, revised = revision.rejected, revision.revised
    critique = policy.feedback("reflect", step=rejected.depth, critique=rejected.reason.strip())
    assert rejected.parent_id is not None  # a step, never the problem
    asked = with_instruction(path_dialogue(policy, tree, rejected.parent_id), critique)
    step = ParsedStep(content=revised.text, final_answer=revised.final_answer, violations=())
    answer = policy.as_assistant(revised.depth, step)
    return {"prompt": [_message(m) for m in asked], "completion": [_message(answer)]}


def in_layout(row: dict[str, Any], layout: str) -> dict[str, Any]:
    """`row` as `layout` has it: `messages` trains on every token, prompts included."""
    if layout == "messages":
        return {"messages": [*row["prompt"], *row["completion"]]}
    return row


def default_policy_messages() -> PolicyMessages:
    """The messages of the policy prompts every strategy asks with (synth has no other)."""
    return PolicyMessages(load_prompts("policy"))


def _without_critique(node: TreeNode) -> str | None:
    """Why a rejected step carries no critique to answer; None when it carries one."""
    if node.reason_source is LabelSource.VERIFIER:
        return VERIFIER_NOTE
    if node.reason_source is LabelSource.NONE or not node.reason.strip():
        return NO_REASON
    return None


def _message(message: LLMMessage) -> dict[str, str]:
    return {"role": message_role(message), "content": str(message.content)}
