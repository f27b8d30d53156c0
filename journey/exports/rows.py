"""Training rows from one session's tree and texts, in TRL's dataset formats.

Every row is a plain dict that `json.dumps` writes and `datasets.load_dataset("json")`
reads back:

- **sft / shortcut** (conversational): `{"prompt": [user], "completion": [assistant]}`
  (TRL's prompt-completion type: SFTTrainer computes the loss on the completion only)
  or, with the `messages` layout, `{"messages": [user, assistant]}` (loss on the whole
  conversation). The user turn is the problem plus a short instruction; the assistant
  turn is the long thought (sft) or the accepted path alone (shortcut).
- **dpo** (conversational preference): `{"prompt", "chosen", "rejected"}`, pairs taken
  from sibling branches of the tree; the rule is in `preference_pairs`.
- **prm** (standard stepwise supervision): `{"prompt": str, "completions": [str],
  "labels": [bool], "label_sources": [str]}`, one row per labelled root-to-leaf path,
  plus `rollouts` and `rollout_judge` when the run has rollout estimates; see
  `stepwise_rows`.
- **revision** (conversational): a critique and the accepted step answering it, asked as a
  debate's policy is asked; see `exports.revisions`.

Labels are read through `StepLabels`: each step's own evidence (critic, critic_action,
self_check, verifier) and nothing else, unless the opt-in `credit_verified_path` rule
labels steps with no evidence on the path to a verified answer correct (source
`verified_path`). A verified answer never overrides a critic's negative verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from journey.protocols import LabelSource, RolloutTally, step_paragraphs
from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PreferencePair",
    "StepLabels",
    "UnknownSteps",
    "conversation_row",
    "preference_pairs",
    "preference_row",
    "steps_text",
    "stepwise_rows",
    "user_prompt",
    "with_boxed_answer",
]

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""Appended to every problem in the user turn: the usual math-SFT instruction."""

Message = dict[str, str]


def user_prompt(problem: str, instruction: str = DEFAULT_INSTRUCTION) -> str:
    """The user turn: the problem, then the instruction on its own paragraph."""
    problem = problem.strip()
    return f"{problem}\n\n{instruction}" if instruction else problem


def with_boxed_answer(text: str, final_answer: str | None) -> str:
    """Append the boxed final answer when the text does not box one (shortcuts may not)."""
    if final_answer and "\\boxed" not in text:
        return f"{text}\n\nSo the final answer is \\boxed{{{final_answer}}}."
    return text


def conversation_row(prompt: str, answer: str, *, layout: str) -> dict[str, Any]:
    """An SFT row: `prompt-completion` (completion-only loss in TRL) or `messages`."""
    user: Message = {"role": "user", "content": prompt}
    assistant: Message = {"role": "assistant", "content": answer}
    if layout == "messages":
        return {"messages": [user, assistant]}
    return {"prompt": [user], "completion": [assistant]}


def steps_text(nodes: list[TreeNode]) -> str:
    """Steps as the transcripts write them: "Step k: ..." paragraphs."""
    return step_paragraphs((n.depth, n.text) for n in nodes)


@dataclass(frozen=True)
class PreferencePair:
    """Two continuations of one shared prefix: the one that reached the answer and a failed one."""

    prefix: list[TreeNode]
    """Steps shared by both (empty when they diverge at the problem)."""
    chosen: list[TreeNode]
    """From the divergence to the verified final answer."""
    rejected: list[TreeNode]
    """The failed branch, from the divergence to the leaf where it was given up."""


class StepLabels:
    """The label and its source for each step of one tree, as exports read them.

    Args:
        tree: A judged and verified tree.
        credit_verified_path: The opt-in rule: a step with no evidence (unknown) on the
            path to a verified answer is labelled correct, with source `verified_path`.
    """

    def __init__(self, tree: ReasoningTree, *, credit_verified_path: bool = False) -> None:
        self.tree = tree
        credited: set[int] = set()
        if credit_verified_path:
            for leaf in tree.correct_leaves():
                credited.update(n.id for n in tree.path(leaf.id)[1:])
        self._credited = frozenset(credited)

    def of(self, node: TreeNode) -> tuple[NodeLabel, LabelSource]:
        if node.label is NodeLabel.UNKNOWN and node.id in self._credited:
            return NodeLabel.CORRECT, LabelSource.VERIFIED_PATH
        return node.label, node.label_source

    def accepted(self, nodes: list[TreeNode]) -> bool:
        """Every step was accepted with evidence (labelled correct)."""
        return all(self.of(n)[0] is NodeLabel.CORRECT for n in nodes)

    def count(self, nodes: list[TreeNode], into: Counter[tuple[str, str]]) -> None:
        """Add the steps' (source, label) pairs to a tally."""
        for node in nodes:
            label, source = self.of(node)
            into[(source.value, label.value)] += 1


def _failed(tree: ReasoningTree, node: TreeNode) -> bool:
    """The branch under `node` holds evidence of failure: a step judged incorrect (by the
    critic or the policy's own check) or a wrong final answer. A branch merely left (a
    pruned beam candidate, a step the critic judged correct but asked to redo) is not."""
    if node.label is NodeLabel.INCORRECT:
        return True
    return any(_failed(tree, child) for child in tree.children(node.id))


def _last_attempt(tree: ReasoningTree, start: TreeNode) -> list[TreeNode]:
    """`start` and, below it, the most recent child at every level down to a leaf.

    Within a failed branch the latest child is the policy's last try before the branch
    was given up, so the rejected text is what it actually ended with there.
    """
    out = [start]
    node = start
    while node.children:
        node = tree[node.children[-1]]
        out.append(node)
    return out


def preference_pairs(
    tree: ReasoningTree, final_node_id: int, *, max_pairs: int | None = None
) -> list[PreferencePair]:
    """DPO pairs from the siblings that branch off the path to the verified answer.

    For every node n on the path root → final answer (the root included), each child c
    of n that is not on the path and whose branch *failed* (c or a node below it was
    judged incorrect, or is a wrong final answer)
    gives one pair: prefix = the path's steps up to n; chosen = the path from n's child
    on the path to the answer; rejected = c and its latest attempt at each level down to
    a leaf. A branch with no step judged incorrect (never judged, or only left behind, as
    a pruned beam candidate) gives no pair. Pairs are listed from the deepest divergence
    up (the closest contrasts first), in visit order at one node, and cut at `max_pairs`.
    """
    path = tree.path(final_node_id)
    on_path = {n.id for n in path}
    pairs: list[PreferencePair] = []
    for depth in range(len(path) - 2, -1, -1):
        node = path[depth]
        for child in tree.children(node.id):
            if child.id in on_path or not _failed(tree, child):
                continue
            pairs.append(
                PreferencePair(
                    prefix=path[1 : depth + 1],
                    chosen=path[depth + 1 :],
                    rejected=_last_attempt(tree, child),
                )
            )
    return pairs[:max_pairs] if max_pairs is not None else pairs


def preference_row(pair: PreferencePair, prompt: str, final_answer: str | None) -> dict[str, Any]:
    """A conversational preference row.

    The shared prefix, when there is one, ends the prompt as an assistant message (the
    policy's own steps so far): TRL renders a trailing assistant message in the prompt
    as the model's earlier output and trains on the continuation only.
    """
    messages: list[Message] = [{"role": "user", "content": prompt}]
    if pair.prefix:
        messages.append({"role": "assistant", "content": steps_text(pair.prefix)})
    chosen = with_boxed_answer(steps_text(pair.chosen), final_answer)
    return {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": steps_text(pair.rejected)}],
    }


class UnknownSteps(StrEnum):
    """What a PRM export does with a step whose label is unknown."""

    DROP = "drop"
    """The row is dropped."""
    SKIP = "skip"
    """The row ends before the unknown step (dropped when nothing is left)."""
    KEEP = "keep"
    """The step stays, labelled null (TRL's PRM trainer needs booleans: filter first)."""


def stepwise_rows(
    tree: ReasoningTree,
    labels: StepLabels | None = None,
    *,
    unknown: UnknownSteps = UnknownSteps.DROP,
    dropped: Counter[str] | None = None,
    rollouts: Mapping[int, RolloutTally] | None = None,
    rollout_judge: str | None = None,
) -> list[dict[str, Any]]:
    """PRM rows (TRL stepwise supervision): one per labelled root-to-leaf path.

    A path is cut after its first incorrect step (later steps build on a wrong one, so
    their labels say nothing about the step itself, as in PRM800K). A step with an
    unknown label before that point is handled per `unknown`. Paths that cut to the
    same steps give one row. Every row carries each label's source.

    Args:
        tree: The judged tree.
        labels: How labels are read; default: each step's own evidence.
        unknown: What to do with a step whose label is unknown.
        dropped: Counts the paths that gave no row, by reason.
        rollouts: Rollout estimates by node id (`journey label`). With them, each row
            carries `rollouts` beside its labels, one per step (`{"correct", "samples",
            "value"}`, or None for a step with none), and `rollout_judge`, their source.
        rollout_judge: The judge that made `rollouts`.
    """
    labels = labels or StepLabels(tree)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, ...]] = set()
    for leaf in tree.leaves():
        steps: list[TreeNode] = []
        for node in tree.path(leaf.id)[1:]:
            label = labels.of(node)[0]
            if label is NodeLabel.UNKNOWN and unknown is not UnknownSteps.KEEP:
                if unknown is UnknownSteps.DROP:
                    steps = []
                break
            steps.append(node)
            if label is NodeLabel.INCORRECT:
                break
        if not steps:
            if dropped is not None:
                dropped["unknown step"] += 1
            continue
        key = tuple(n.id for n in steps)
        if key in seen:
            continue
        seen.add(key)
        judged = [labels.of(n) for n in steps]
        rows.append(
            {
                "prompt": tree.problem.strip(),
                "completions": [n.text for n in steps],
                "labels": [
                    None if label is NodeLabel.UNKNOWN else label is NodeLabel.CORRECT
                    for label, _ in judged
                ],
                "label_sources": [source.value for _, source in judged],
                **_rollout_columns(steps, rollouts, rollout_judge),
            }
        )
    return rows


def _rollout_columns(
    steps: list[TreeNode], rollouts: Mapping[int, RolloutTally] | None, judge: str | None
) -> dict[str, Any]:
    if judge is None or rollouts is None:
        return {}
    estimates = [rollouts.get(n.id) for n in steps]
    return {
        "rollouts": [
            None if t is None else {"correct": t.correct, "samples": t.samples, "value": t.value}
            for t in estimates
        ],
        "rollout_judge": judge,
    }
