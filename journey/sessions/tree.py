"""The reasoning tree: the problem at the root, one policy step per node.

Children of a node are alternative next steps. The *current path* runs from the
root to the cursor; a backtrack to step k moves the cursor to the node at depth k
on that path, so the next step becomes a sibling of the abandoned step k+1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from journey.protocols import LabelSource, StepVerdict, wrong_answer_note

ROOT_ID = 0


class NodeLabel(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNKNOWN = "unknown"


class IllegalBacktrackError(ValueError):
    """The backtrack target is not a step on the current path."""


@dataclass
class TreeNode:
    """One step (or the problem, at the root)."""

    id: int
    parent_id: int | None
    depth: int
    """Step number on its path; 0 for the root."""
    text: str
    children: list[int] = field(default_factory=list)
    verdict: StepVerdict | None = None
    """The critic's judgement, if it judged this step."""
    reason: str = ""
    """The critic's reason, or the verifier's note on a rejected final answer."""
    reason_source: LabelSource = LabelSource.NONE
    """Whose words `reason` are: the judge's (the critic, a self-check...), or the
    verifier's note (`verifier`), which names no error; `none` without a reason."""
    label: NodeLabel = NodeLabel.UNKNOWN
    """Best-known correctness: a verifier result outranks the critic's verdict."""
    label_source: LabelSource = LabelSource.NONE
    """The evidence behind `label`; `none` exactly when the label is unknown."""
    final_answer: str | None = None
    verified: bool | None = None
    """Verifier result on a final answer; None when unchecked."""
    abandoned: bool = False
    """Left behind by a reflect or a backtrack."""
    tokens: int = 0
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        if self.label is NodeLabel.UNKNOWN:
            self.label_source = LabelSource.NONE
        elif self.label_source is LabelSource.NONE:  # a tree saved before labels had sources
            judged_by_verifier = self.verified is not None
            self.label_source = LabelSource.VERIFIER if judged_by_verifier else LabelSource.CRITIC
        if self.reason and self.reason_source is LabelSource.NONE:
            # A tree saved before reasons had sources: the verifier's note is the one
            # sentence it writes on a rejected answer.
            note = self.verified is False and self.reason == wrong_answer_note(self.final_answer)
            self.reason_source = LabelSource.VERIFIER if note else LabelSource.CRITIC

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def is_final(self) -> bool:
        return self.final_answer is not None


class TreeRecord(BaseModel):
    """The on-disk form of a tree."""

    problem: str
    gold_answer: str | None
    nodes: list[TreeNode]
    visit_order: list[int]
    cursor: int


_record_adapter = TypeAdapter(TreeRecord)


class ReasoningTree:
    """A reasoning tree with a cursor marking the end of the current path."""

    def __init__(self, problem: str, gold_answer: str | None = None) -> None:
        self.problem = problem
        self.gold_answer = gold_answer
        root = TreeNode(id=ROOT_ID, parent_id=None, depth=0, text=problem)
        self._nodes: dict[int, TreeNode] = {ROOT_ID: root}
        self.visit_order: list[int] = [ROOT_ID]
        self.cursor: int = ROOT_ID

    # -- reading ---------------------------------------------------------------------------

    @property
    def root(self) -> TreeNode:
        return self._nodes[ROOT_ID]

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[TreeNode]:
        """Nodes in the order they were visited."""
        return (self._nodes[i] for i in self.visit_order)

    def __getitem__(self, node_id: int) -> TreeNode:
        return self._nodes[node_id]

    def children(self, node_id: int) -> list[TreeNode]:
        return [self._nodes[c] for c in self._nodes[node_id].children]

    def siblings(self, node_id: int) -> list[TreeNode]:
        """The other children of this node's parent, in visit order."""
        parent = self._nodes[node_id].parent_id
        if parent is None:
            return []
        return [n for n in self.children(parent) if n.id != node_id]

    def path(self, node_id: int) -> list[TreeNode]:
        """Nodes from the root to `node_id`, both included."""
        out: list[TreeNode] = []
        node: TreeNode | None = self._nodes[node_id]
        while node is not None:
            out.append(node)
            node = None if node.parent_id is None else self._nodes[node.parent_id]
        out.reverse()
        return out

    def current_path(self) -> list[TreeNode]:
        """Steps from step 1 to the cursor (the root excluded)."""
        return self.path(self.cursor)[1:]

    def leaves(self) -> list[TreeNode]:
        return [n for n in self if not n.children and not n.is_root]

    def final_leaves(self) -> list[TreeNode]:
        return [n for n in self if n.is_final]

    def correct_leaves(self) -> list[TreeNode]:
        """Final answers the verifier accepted."""
        return [n for n in self if n.is_final and n.verified]

    def shallowest_correct_leaf(self) -> int | None:
        """The verified answer a long thought ends at: the shallowest, the first on a tie."""
        leaf = min(self.correct_leaves(), key=lambda n: n.depth, default=None)
        return None if leaf is None else leaf.id

    # -- growing ---------------------------------------------------------------------------

    def add_step(
        self,
        text: str,
        *,
        parent_id: int | None = None,
        final_answer: str | None = None,
        tokens: int = 0,
        elapsed: float = 0.0,
    ) -> TreeNode:
        """Add a step as a child of `parent_id` (default: the cursor) and move the cursor to it."""
        parent = self._nodes[self.cursor if parent_id is None else parent_id]
        node = TreeNode(
            id=len(self._nodes),
            parent_id=parent.id,
            depth=parent.depth + 1,
            text=text,
            final_answer=final_answer,
            tokens=tokens,
            elapsed=elapsed,
        )
        self._nodes[node.id] = node
        parent.children.append(node.id)
        self.visit_order.append(node.id)
        self.cursor = node.id
        return node

    def judge(
        self,
        node_id: int,
        verdict: StepVerdict,
        reason: str,
        source: LabelSource | None = None,
    ) -> None:
        """Record a judgement of a step; it sets the label unless a verifier already has.

        Args:
            node_id: The step judged.
            verdict: The verdict; `unknown` labels the step unknown with source `none`.
            reason: Why, as the judge said it.
            source: The evidence (default `critic`); ignored for an unknown verdict.
        """
        node = self._nodes[node_id]
        node.verdict = verdict
        node.reason = reason
        node.reason_source = (source or LabelSource.CRITIC) if reason else LabelSource.NONE
        if node.verified is None:
            node.label = NodeLabel(verdict.value)
            node.label_source = (
                LabelSource.NONE
                if verdict is StepVerdict.UNKNOWN
                else (source or LabelSource.CRITIC)
            )

    def record_verification(self, node_id: int, correct: bool) -> None:
        """Record the verifier's result on a final answer: it labels that step alone, and
        a rejected answer's reason becomes the verifier's note (`wrong_answer_note`).

        A verified answer says nothing certain about the steps before it (a wrong step
        can still reach the right answer), so their labels keep their own evidence.
        """
        node = self._nodes[node_id]
        node.verified = correct
        node.label = NodeLabel.CORRECT if correct else NodeLabel.INCORRECT
        node.label_source = LabelSource.VERIFIER
        if not correct:
            node.reason = wrong_answer_note(node.final_answer)
            node.reason_source = LabelSource.VERIFIER

    def backtrack(self, to_step: int) -> TreeNode:
        """Move the cursor back to the node at depth `to_step` on the current path.

        The abandoned steps stay in the tree, marked `abandoned`; the next step added
        becomes a sibling of the abandoned step `to_step + 1`. `to_step = 0` restarts
        from the problem.

        Raises:
            IllegalBacktrackError: `to_step` is not a step on the current path before the cursor.
        """
        path = self.path(self.cursor)
        if not 0 <= to_step < len(path) - 1 or to_step >= path[-1].depth:
            raise IllegalBacktrackError(
                f"cannot backtrack to step {to_step}: the current path has steps "
                f"1..{path[-1].depth}, so the target must be 0..{max(path[-1].depth - 1, 0)}"
            )
        for node in path[to_step + 1 :]:
            node.abandoned = True
        self.cursor = path[to_step].id
        return path[to_step]

    # -- serialisation ---------------------------------------------------------------------

    def to_record(self) -> TreeRecord:
        return TreeRecord(
            problem=self.problem,
            gold_answer=self.gold_answer,
            nodes=[self._nodes[i] for i in sorted(self._nodes)],
            visit_order=list(self.visit_order),
            cursor=self.cursor,
        )

    @classmethod
    def from_record(cls, record: TreeRecord) -> ReasoningTree:
        tree = cls(record.problem, record.gold_answer)
        tree._nodes = {n.id: n for n in record.nodes}
        tree.visit_order = list(record.visit_order)
        tree.cursor = record.cursor
        return tree

    def to_json(self, *, indent: int | None = 2) -> str:
        return _record_adapter.dump_json(self.to_record(), indent=indent).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> ReasoningTree:
        return cls.from_record(_record_adapter.validate_json(data))

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ReasoningTree:
        return cls.from_json(path.read_bytes())
