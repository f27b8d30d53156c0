"""From a searched tree to a long thought: the seed's depth-first walk over a searched tree.

A tree grown by tree search holds many alternatives per step, each labelled by a
critic, and final-answer leaves the verifier accepted or rejected. The long
thought walks the *correct path* (root to a verified answer); at each step of it
the walk may first wander into a failed sibling branch, follow it one child at a
time down to its failed leaf, reflect on why it failed (the recorded critique,
turned first person) and go back, at most `trials_per_node` times per step.

The seed ("O1 Replication Journey", Part 1, section "How to Derive a Long Thought
from a Reasoning Tree") limits "the number of trials on incorrect paths for each
node" without giving the number; we default to 2. A beam session records its own as
`beam_walk_trials` in its `problem_posed` config
(`journey.sessions.beam_select.walk_trials_from_config` reads it back).

The text uses the same step lines and reflection phrasing as `LongThoughtWriter`,
so a journey from a debate and one from a tree walk look alike.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from journey.errors import ConfigError
from journey.longthought.transcript import (
    LongThoughtWriter,
    checked_step,
    first_person,
    reflection_opener,
    rejected_answer,
    way_back,
)
from journey.protocols import LabelSource, step_line
from journey.protocols.arithmetic_claims import named_correction, states_number
from journey.sessions.beam_select import DEFAULT_TRIALS_PER_NODE
from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode


class WrongTurns(StrEnum):
    """Which failed branches a tree walk enters, each choice stricter than the one before."""

    ALL = "all"
    """Every failed branch, up to the per-step cap."""
    REASONED = "reasoned"
    """Only those whose reflection can say why they failed (a critique, or a false claim
    in the rejected answer's step), never one the verifier only marked wrong: a bare
    "that does not seem right" teaches a model to doubt, not to check."""
    FOLLOWED = "followed"
    """`REASONED`, and a reflection that names a right value (`8 * 7 = 54 is false:
    8 * 7 is 56`) only where the correct step after it uses that value, and only once
    per step: models trained on corrections the next step ignored wrote their wrong step
    again after 69 of 197 corrections; with this, the journey arm no longer trails the
    shortcut arm measurably (docs/experiment.md, "Changes to the data")."""


def wrong_turns_choice(value: str) -> WrongTurns:
    """`value` as a `WrongTurns` choice.

    Raises:
        ConfigError: `value` is not one of the choices.
    """
    try:
        return WrongTurns(value)
    except ValueError:
        choices = ", ".join(choice.value for choice in WrongTurns)
        raise ConfigError(f"wrong turns must be one of {choices}, got {value!r}") from None


def wrong_turns_of_flags(
    *, reasoned_trials_only: bool, followed_corrections_only: bool
) -> WrongTurns:
    """The choice the two booleans of earlier versions spelt (the second implied the first),
    so recipes, scripts and cards that name them keep their meaning."""
    if followed_corrections_only:
        return WrongTurns.FOLLOWED
    return WrongTurns.REASONED if reasoned_trials_only else WrongTurns.ALL


NO_REASON = "no reason given"
"""Why a failed branch is left out under `WrongTurns.REASONED`: its reflection can only
doubt."""
CORRECTION_NOT_FOLLOWED = "correction not followed"
"""Why one is left out under `WrongTurns.FOLLOWED`: the right value its reflection names
is not what the next step uses."""
CORRECTION_WRITTEN = "correction already written"
"""Why one is left out under `WrongTurns.FOLLOWED`: the step already has its correction
(one per step, written just before the step that uses it)."""


@dataclass(frozen=True)
class LongThought:
    """A session's long thought, and the wrong turns its writer left out."""

    text: str
    wrong_turns_left_out: dict[str, int] = field(default_factory=dict)
    """Failed branches a tree walk looked at and did not enter, by why (`NO_REASON`,
    `CORRECTION_NOT_FOLLOWED`, `CORRECTION_WRITTEN`); an export counts them on its
    card. Branches past the per-step cap are not looked at, so not counted."""


@dataclass(frozen=True)
class TreeWalkWriter:
    """Writes the long thought of a searched tree by a seeded depth-first walk."""

    trials_per_node: int = DEFAULT_TRIALS_PER_NODE
    """At most this many failed branches are entered from one step of the correct path."""
    enter_probability: float = 1.0
    """Chance of entering each failed branch (until `trials_per_node` are entered)."""
    seed: int = 0
    """Seeds the choice of branches, so the same tree always gives the same text."""
    vary_openers: bool = True
    """Rotate "Wait," / "Hmm," / "Hold on," as `LongThoughtWriter` does."""
    wrong_turns: WrongTurns = WrongTurns.ALL
    """Which failed branches may be entered (see `WrongTurns`)."""

    def __post_init__(self) -> None:
        if self.trials_per_node < 0:
            raise ConfigError(f"trials_per_node must be >= 0, got {self.trials_per_node!r}")
        object.__setattr__(self, "wrong_turns", wrong_turns_choice(self.wrong_turns))
        if not 0.0 <= self.enter_probability <= 1.0:
            raise ConfigError(
                f"enter_probability must be between 0 and 1, got {self.enter_probability!r}"
            )

    def write(self, tree: ReasoningTree, leaf_id: int | None = None) -> str | None:
        """The long thought of `tree`; None when it has no verified answer.

        Args:
            tree: A searched tree, its steps judged and its final answers verified.
            leaf_id: The verified leaf to walk to; default `correct_leaf(tree)`.
        """
        walked = self.walk(tree, leaf_id)
        return walked.text if walked is not None else None

    def walk(self, tree: ReasoningTree, leaf_id: int | None = None) -> LongThought | None:
        """`write`'s long thought, with the failed branches the walk passed over."""
        leaf_id = self.correct_leaf(tree) if leaf_id is None else leaf_id
        if leaf_id is None:
            return None
        rng = random.Random(self.seed)
        failed = _FailedBranches(tree)
        correct_path = tree.path(leaf_id)
        lines: list[str] = []
        reflections = 0
        left_out: Counter[str] = Counter()
        for node, next_node in itertools.pairwise(correct_path):
            if node.depth > 0:
                lines.append(step_line(node.depth, node.text))
            for walked in self._trials(tree, node, next_node, failed, rng, left_out):
                opener = reflection_opener(reflections, vary=self.vary_openers)
                reflections += 1
                lines.extend(step_line(step.depth, step.text) for step in walked)
                lines.append(_reflection(opener, walked, back_to=node.depth))
        leaf = correct_path[-1]
        lines.append(step_line(leaf.depth, leaf.text))
        if "\\boxed" not in leaf.text and leaf.final_answer:
            lines.append(f"So the final answer is \\boxed{{{leaf.final_answer}}}.")
        return LongThought("\n\n".join(lines), dict(sorted(left_out.items())))

    def _trials(
        self,
        tree: ReasoningTree,
        node: TreeNode,
        next_node: TreeNode,
        failed: _FailedBranches,
        rng: random.Random,
        left_out: Counter[str],
    ) -> list[list[TreeNode]]:
        """The failed branches entered from `node` before the correct step `next_node`,
        in the order they are written, counting in `left_out` those passed over."""
        candidates = [
            child
            for child in tree.children(node.id)
            if child.id != next_node.id and failed(child.id)
        ]
        rng.shuffle(candidates)
        entered: list[list[TreeNode]] = []
        corrected: list[TreeNode] | None = None  # written last, just before the step using it
        for branch in candidates:
            if len(entered) + (corrected is not None) >= self.trials_per_node:
                break
            if rng.random() >= self.enter_probability:
                continue
            walked = self._follow(tree, branch, failed, rng)
            why = _reason(walked)
            if self.wrong_turns != WrongTurns.ALL and not why:
                left_out[NO_REASON] += 1
                continue
            if self.wrong_turns == WrongTurns.FOLLOWED:
                value = _named_value(walked, why)
                if value is not None:
                    if not states_number(next_node.text, value):
                        left_out[CORRECTION_NOT_FOLLOWED] += 1
                    elif corrected is not None:
                        left_out[CORRECTION_WRITTEN] += 1
                    else:
                        corrected = walked
                    continue
            entered.append(walked)
        return [*entered, corrected] if corrected is not None else entered

    @staticmethod
    def correct_leaf(tree: ReasoningTree) -> int | None:
        """The verified answer the walk ends at: the shallowest, the first found on a tie."""
        return tree.shallowest_correct_leaf()

    def shortcut(self, tree: ReasoningTree) -> str | None:
        """The correct path alone, to the same leaf as `write`; None without a verified answer."""
        return LongThoughtWriter.shortcut(tree, self.correct_leaf(tree))

    @staticmethod
    def _follow(
        tree: ReasoningTree, branch: TreeNode, failed: _FailedBranches, rng: random.Random
    ) -> list[TreeNode]:
        """Steps from `branch` down to a leaf, one random child at a time, preferring
        children that are known to fail (so the walk ends somewhere worth reflecting on)."""
        walked = [branch]
        while children := tree.children(walked[-1].id):
            failing = [c for c in children if failed(c.id)]
            walked.append(rng.choice(failing or children))
        return walked


class _FailedBranches:
    """Memoised test: does a subtree fail? It has no verified answer and something in it
    was judged incorrect (by the critic or the verifier)."""

    def __init__(self, tree: ReasoningTree) -> None:
        self._tree = tree
        self._known: dict[int, tuple[bool, bool]] = {}

    def __call__(self, node_id: int) -> bool:
        has_correct, has_wrong = self._scan(node_id)
        return has_wrong and not has_correct

    def _scan(self, node_id: int) -> tuple[bool, bool]:
        """(contains a verified answer, contains a node labelled incorrect), without recursion
        so a deep tree cannot overflow the stack."""
        order: list[int] = []
        stack = [node_id]
        while stack:
            current = stack.pop()
            if current in self._known:
                continue
            order.append(current)
            stack.extend(self._tree[current].children)
        for current in reversed(order):  # children before parents
            node = self._tree[current]
            has_correct = node.verified is True
            has_wrong = node.label is NodeLabel.INCORRECT
            for child in node.children:
                child_correct, child_wrong = self._known[child]
                has_correct = has_correct or child_correct
                has_wrong = has_wrong or child_wrong
            self._known[current] = (has_correct, has_wrong)
        return self._known[node_id]


def _reflection(opener: str, walked: list[TreeNode], *, back_to: int) -> str:
    """Why the walked branch failed, in `LongThoughtWriter`'s words, and the way back."""
    wrong = _blamed(walked)
    leaf = walked[-1]
    back = way_back(back_to)
    if wrong is leaf and leaf.verified is False:
        note = _answer_note(leaf)
        said = f" {note}" if note else ""
        return f"{rejected_answer(opener, leaf.final_answer, leaf.text)}{said} {back}"
    critique = first_person(wrong.reason)
    said = f" {critique}" if critique else ""
    return f"{opener} step {wrong.depth} is wrong.{said} {back}"


def _reason(walked: list[TreeNode]) -> str:
    """The words of `_reflection` that say why the branch failed (a critique, or the false
    claim of a rejected answer's step); empty when it can only doubt."""
    wrong = _blamed(walked)
    leaf = walked[-1]
    if wrong is leaf and leaf.verified is False:
        return " ".join(filter(None, [checked_step(leaf.text), _answer_note(leaf)]))
    return first_person(wrong.reason)


def _answer_note(leaf: TreeNode) -> str:
    """A critic's note on a rejected answer, first person; the verifier's is not a
    critique to repeat, so it gives none."""
    return "" if leaf.reason_source is LabelSource.VERIFIER else first_person(leaf.reason)


def _blamed(walked: list[TreeNode]) -> TreeNode:
    """The step a reflection on the walked branch blames: its first judged incorrect, or
    the rejected answer it ends on."""
    return next((n for n in walked if n.label is NodeLabel.INCORRECT), walked[-1])


def _named_value(walked: list[TreeNode], why: str) -> str | None:
    """The right value that `why` (the reason a reflection gives) names for a false claim
    of the blamed step; None when it names none."""
    return named_correction(_blamed(walked).text, why)
