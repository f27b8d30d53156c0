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
  "labels": [bool]}`, one row per labelled root-to-leaf path; see `stepwise_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from journey.synthesis.tree import NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PreferencePair",
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
    return "\n\n".join(f"Step {n.depth}: {n.text}" for n in nodes)


@dataclass(frozen=True)
class PreferencePair:
    """Two continuations of one shared prefix: the one that reached the answer and a failed one."""

    prefix: list[TreeNode]
    """Steps shared by both (empty when they diverge at the problem)."""
    chosen: list[TreeNode]
    """From the divergence to the verified final answer."""
    rejected: list[TreeNode]
    """The failed branch, from the divergence to the leaf where it was given up."""


def _failed(tree: ReasoningTree, node: TreeNode) -> bool:
    """The branch under `node` was judged wrong, given up, or ended on a wrong answer."""
    if node.abandoned or node.label is NodeLabel.INCORRECT:
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
    judged incorrect, abandoned by a reflect or backtrack, or is a wrong final answer)
    gives one pair: prefix = the path's steps up to n; chosen = the path from n's child
    on the path to the answer; rejected = c and its latest attempt at each level down to
    a leaf. Siblings never judged and never given up (e.g. unexplored beam candidates)
    give no pair. Pairs are listed from the deepest divergence up (the closest contrasts
    first), in visit order at one node, and cut at `max_pairs`.
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


def stepwise_rows(tree: ReasoningTree) -> list[dict[str, Any]]:
    """PRM rows (TRL stepwise supervision): one per labelled root-to-leaf path.

    A path is cut after its first incorrect step (later steps build on a wrong one, so
    their labels say nothing about the step itself, as in PRM800K). A path with a step
    labelled neither correct nor incorrect before that point gives no row. Paths that
    cut to the same steps give one row.
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, ...]] = set()
    for leaf in tree.leaves():
        steps: list[TreeNode] = []
        for node in tree.path(leaf.id)[1:]:
            steps.append(node)
            if node.label is not NodeLabel.CORRECT:
                break
        if any(n.label is NodeLabel.UNKNOWN for n in steps):
            continue
        key = tuple(n.id for n in steps)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "prompt": tree.problem.strip(),
                "completions": [n.text for n in steps],
                "labels": [n.label is NodeLabel.CORRECT for n in steps],
            }
        )
    return rows
