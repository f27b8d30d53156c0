"""Beam search settings, the process reward of a step, and which steps the beam keeps.

Kept apart from the session (`beam.py`) because these are pure functions of logged
values: a restored session recomputes the same choices from the event log alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from journey.agents import AnswerVerifier
from journey.errors import ConfigError
from journey.protocols import (
    Action,
    ActionName,
    Backtrack,
    Continue,
    Reflect,
    Role,
    StepVerdict,
    Terminate,
)
from journey.sessions.base import RestoreError
from journey.sessions.tree import ROOT_ID, ReasoningTree

"""The key under which a step's reward rides in its verdict's `label_scores`."""

DROPPED_KINDS = ("duplicate_sibling", "restated_step", "unusable_sample")
"""Violation kinds that record a sample dropped from an expansion (one violation each)."""

_VERDICT_REWARD = {
    StepVerdict.CORRECT: 1.0,
    StepVerdict.INCORRECT: 0.0,
    StepVerdict.UNKNOWN: 0.5,
}
_GOOD_LABELS = (str(ActionName.CONTINUE), str(ActionName.TERMINATE))
_ACTION_LABELS = frozenset(str(name) for name in ActionName)


DEFAULT_TRIALS_PER_NODE = 2
"""The long thought's tree walk enters at most this many failed branches per step of the
correct path. Not stated in the seed; 2 keeps a long thought a few failed branches long
per step. A beam session records its value (`beam_walk_trials`) for the walk to read."""


@dataclass(frozen=True)
class BeamOptions:
    """How wide and how long the beam search grows its tree.

    Read from a session's `config` (keys `beam_width`, `beam_size`,
    `beam_max_expansions`, `beam_temperature`, `beam_full_tree`, `beam_walk_trials`)
    and recorded, resolved, in the session's `problem_posed`, so a restored session
    goes on with the same settings and its long thought is walked as configured.
    """

    width: int = field(default=3, metadata={"help": "Children sampled per expanded node (w)."})
    size: int = field(default=2, metadata={"help": "Nodes kept per depth (K)."})
    max_expansions: int = field(
        default=16, metadata={"help": "Node expansions (w samples each) before it stops."}
    )
    temperature: float = field(
        default=0.8, metadata={"help": "Sampling temperature of the children (> 0: they differ)."}
    )
    full_tree: bool = field(
        default=False,
        metadata={
            "help": "Grow the tree to max_depth or until every leaf has ended, "
            "instead of stopping at the first verified answer."
        },
    )
    walk_trials: int = field(
        default=DEFAULT_TRIALS_PER_NODE,
        metadata={"help": "Failed branches the long thought's tree walk enters per step (K)."},
    )

    def __post_init__(self) -> None:
        for name in ("width", "size", "max_expansions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"beam {name} must be an integer of at least 1, got {value!r}")
        if not self.temperature >= 0:
            raise ConfigError(f"beam temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.full_tree, bool):
            raise ConfigError(f"beam full_tree must be true or false, got {self.full_tree!r}")
        _check_walk_trials(self.walk_trials)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, default_expansions: int) -> BeamOptions:
        """The options in a session config; `default_expansions` when it names no cap."""
        expansions = config.get("beam_max_expansions")
        return cls(
            width=config.get("beam_width", cls.width),
            size=config.get("beam_size", cls.size),
            max_expansions=default_expansions if expansions is None else expansions,
            temperature=float(config.get("beam_temperature", cls.temperature)),
            full_tree=config.get("beam_full_tree", cls.full_tree),
            walk_trials=walk_trials_from_config(config),
        )

    def as_config(self) -> dict[str, Any]:
        return {
            "beam_width": self.width,
            "beam_size": self.size,
            "beam_max_expansions": self.max_expansions,
            "beam_temperature": self.temperature,
            "beam_full_tree": self.full_tree,
            "beam_walk_trials": self.walk_trials,
        }


def walk_trials_from_config(config: Mapping[str, Any]) -> int:
    """The tree walk's trials per correct node (K) named by a session's config.

    Read it from a `problem_posed` config (or a run's `strategy_config`) to write that
    session's long thought with `TreeWalkWriter(trials_per_node=...)`; a config that
    names none (a debate, an older beam log) gets the default, 2.

    Raises:
        ConfigError: the value is not an integer of at least 0.
    """
    trials = config.get("beam_walk_trials", DEFAULT_TRIALS_PER_NODE)
    _check_walk_trials(trials)
    return int(trials)


def _check_walk_trials(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"beam walk_trials must be an integer of at least 0, got {value!r}")


def step_reward(verdict: StepVerdict, label_scores: Mapping[str, float] | None) -> float:
    """The process reward of a step, in [0, 1].

    With label scores (the critic ranked the action labels by log-probability), the
    reward is the probability mass the critic puts on accepting the step: the softmax
    over the scored labels, summed over `continue` and `terminate`. Without them, the
    critic's verdict: correct 1.0, incorrect 0.0, unknown 0.5.
    """
    scores = {k: v for k, v in (label_scores or {}).items() if k in _ACTION_LABELS}
    if not scores:
        return _VERDICT_REWARD[verdict]
    top = max(scores.values())
    weights = {label: math.exp(score - top) for label, score in scores.items()}
    good = sum(w for label, w in weights.items() if label in _GOOD_LABELS)
    return round(good / sum(weights.values()), 6)


@dataclass(frozen=True)
class Ranked:
    """A candidate's place in the beam's choice."""

    node_id: int
    reward: float
    rank: int
    """1 for the best; candidates are ordered by reward, then by node id."""
    kept: bool


def rank_candidates(rewards: Mapping[int, float], beam_size: int) -> list[Ranked]:
    """Order candidates best first (ties: the older node) and keep the best `beam_size`."""
    order = sorted(rewards, key=lambda node_id: (-rewards[node_id], node_id))
    return [
        Ranked(node_id=n, reward=rewards[n], rank=i, kept=i <= beam_size)
        for i, n in enumerate(order, 1)
    ]


def normalise_step(text: str) -> str:
    """What makes two sibling steps the same step: case and spacing aside, the text."""
    return " ".join(text.lower().split())


# -- a round and what it does with each new step ---------------------------------------------


@dataclass
class BeamRound:
    """One depth of the search: the beam it expands and the steps it added so far."""

    parents: list[int]
    first_turn: int
    """Expansions before this round; parent i's expansion is turn first_turn + i + 1."""
    nodes: list[int] = field(default_factory=list)
    judged: set[int] = field(default_factory=set)
    applied: set[int] = field(default_factory=set)

    def turn_of(self, parent_id: int) -> int:
        return self.first_turn + self.parents.index(parent_id) + 1


@dataclass(frozen=True)
class BeamChoice:
    """What the search does with one new step, as logged in its `action_applied`."""

    action: Action
    source: Role
    cursor_id: int
    note: str


def accepted_answer(tree: ReasoningTree, node_id: int, verifier: AnswerVerifier | None) -> bool:
    """A final answer that counts as found: verified, or (no gold answer) accepted by the critic."""
    node = tree[node_id]
    if not node.is_final:
        return False
    if verifier is not None:
        return node.verified is True
    return node.verdict is StepVerdict.CORRECT


def winner(
    tree: ReasoningTree,
    round_: BeamRound,
    rewards: Mapping[int, float],
    verifier: AnswerVerifier | None,
) -> int | None:
    """The final answer that ends a search stopping at its first answer.

    Several in one round: the best rewarded, then the oldest.
    """
    accepted = [n for n in round_.nodes if accepted_answer(tree, n, verifier)]
    return min(accepted, key=lambda n: (-rewards[n], n), default=None)


def answer_node(tree: ReasoningTree, verifier: AnswerVerifier | None) -> int | None:
    """The answer a search ends on once it has found any: the shallowest, the first on a tie.

    With a gold answer it is the verified leaf the tree walk ends at
    (`ReasoningTree.shallowest_correct_leaf`), so the session's final node and its long
    thought agree.
    """
    if verifier is not None:
        return tree.shallowest_correct_leaf()
    accepted = [n for n in tree if accepted_answer(tree, n.id, verifier)]
    return min(accepted, key=lambda n: n.depth).id if accepted else None


def keepable(tree: ReasoningTree, node_id: int, rewards: Mapping[int, float]) -> bool:
    """May the beam keep this step? Only a non-final step the critic judged correct with a
    reward above 0: an incorrect or unknown verdict is never kept, whatever else scored."""
    node = tree[node_id]
    return not node.is_final and node.verdict is StepVerdict.CORRECT and rewards[node_id] > 0


def ranking(
    tree: ReasoningTree, round_: BeamRound, rewards: Mapping[int, float], beam_size: int
) -> dict[int, Ranked]:
    """The round's keepable steps ranked, the best `beam_size` kept; the rest are pruned."""
    candidates = {n: rewards[n] for n in round_.nodes if keepable(tree, n, rewards)}
    return {r.node_id: r for r in rank_candidates(candidates, beam_size)}


def choose(
    tree: ReasoningTree,
    round_: BeamRound,
    node_id: int,
    rewards: Mapping[int, float],
    options: BeamOptions,
    verifier: AnswerVerifier | None,
) -> BeamChoice:
    """What the search does with a judged step: a pure function of the logged results.

    An accepted answer is a `terminate`: it ends the search, or with `full_tree` it is a
    finished leaf and the search goes on. A wrong answer is pruned (the verifier's
    `reflect`), a step judged incorrect or unknown is pruned (`backtrack`), and of the
    steps judged correct the best `options.size` are kept (`continue`).

    Raises:
        RestoreError: another step of the round already ended the search.
    """
    node = tree[node_id]
    parent = node.parent_id if node.parent_id is not None else ROOT_ID
    source = Role.VERIFIER if node.is_final and verifier is not None else Role.CRITIC
    found = "verified answer" if source is Role.VERIFIER else "answer accepted by the critic"
    if options.full_tree:
        if accepted_answer(tree, node_id, verifier):
            note = f"{found}: a finished leaf, the tree grows on"
            return BeamChoice(Terminate(answer=node.final_answer), source, node_id, note)
    else:
        best = winner(tree, round_, rewards, verifier)
        if best is not None:
            if node_id != best:
                raise RestoreError(f"node {node_id} acted on after node {best} ended the search")
            return BeamChoice(Terminate(answer=node.final_answer), source, node_id, found)
    back = Backtrack(to_step=node.depth - 1, critique=node.reason)
    if node.is_final:
        if verifier is not None:
            wrong = Reflect(critique=node.reason)
            return BeamChoice(wrong, source, parent, "pruned: wrong final answer")
        return BeamChoice(back, source, parent, "pruned: final answer not accepted")
    reward = f"reward {rewards[node_id]:.3f}"
    ranked = ranking(tree, round_, rewards, options.size)
    place = ranked.get(node_id)
    if place is None:
        return BeamChoice(back, source, parent, f"pruned: {_not_correct(node.verdict)}, {reward}")
    where = f"beam rank {place.rank} of {len(ranked)} judged correct, {reward}"
    if place.kept:
        return BeamChoice(Continue(), source, node_id, f"kept: {where}")
    return BeamChoice(back, source, parent, f"pruned: {where}")


def _not_correct(verdict: StepVerdict | None) -> str:
    """Why a step the beam may not keep is pruned."""
    if verdict is StepVerdict.INCORRECT:
        return "judged incorrect"
    if verdict is StepVerdict.CORRECT:
        return "judged correct but no reward"
    return "verdict unknown"
