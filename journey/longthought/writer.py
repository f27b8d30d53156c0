"""The long thought of a session: one source for the run directory, replay, browse and export.

A dialogue (debate, propose-critique) is its own journey: `LongThoughtWriter` writes it in
the order it happened; an expansion (expand) too, its reflections in its own words
(`OWN_REFLECTIONS`). A searched tree (beam) has no such order: its long thought is the
seed's depth-first walk (`TreeWalkWriter`) to the shallowest verified answer, and the
dialogue order only when the search found none. Every place that shows or exports a long
thought calls `write_long_thought`, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from journey.errors import ConfigError
from journey.longthought.transcript import LongThoughtWriter
from journey.longthought.tree_walk import (
    LongThought,
    TreeWalkWriter,
    WrongTurns,
    wrong_turns_choice,
)
from journey.protocols import ProblemPosed, SessionEnded, SessionEvent
from journey.sessions.beam_select import walk_trials_from_config
from journey.sessions.tree import ReasoningTree

__all__ = [
    "OWN_REFLECTIONS",
    "SEARCHED_TREES",
    "LongThought",
    "LongThoughtOptions",
    "WrongTurns",
    "long_thought",
    "write_long_thought",
]

SEARCHED_TREES = frozenset({"beam"})
"""Strategies whose long thought is walked from the tree rather than the dialogue."""

OWN_REFLECTIONS = frozenset({"expand"})
"""Strategies whose reflections are the policy's own words, written as they are."""


@dataclass(frozen=True)
class LongThoughtOptions:
    """How long thoughts are written; an export records these in its card."""

    include_reasoning: bool = field(
        default=False,
        metadata={"help": "Put the policy's thoughts (a reasoning model's) before each step."},
    )
    trials_per_node: int | None = field(
        default=None,
        metadata={
            "help": "Tree walk: failed branches entered per correct step; "
            "None: the session's own setting, else 2."
        },
    )

    wrong_turns: WrongTurns = field(
        default=WrongTurns.ALL,
        metadata={
            "help": "Tree walk: the failed branches it may enter: all; reasoned (their "
            "reflection says why they failed); followed (reasoned, and a correction naming "
            "a right value only where the next step uses it, once per step)."
        },
    )

    def __post_init__(self) -> None:
        if self.trials_per_node is not None and self.trials_per_node < 0:
            raise ConfigError(f"trials_per_node must be >= 0, got {self.trials_per_node!r}")
        object.__setattr__(self, "wrong_turns", wrong_turns_choice(self.wrong_turns))

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "wrong_turns": self.wrong_turns.value}


def write_long_thought(
    events: Sequence[SessionEvent],
    tree: ReasoningTree | None,
    options: LongThoughtOptions | None = None,
) -> str:
    """The long thought of one session (rules in the module docstring); `long_thought`'s text."""
    return long_thought(events, tree, options).text


def long_thought(
    events: Sequence[SessionEvent],
    tree: ReasoningTree | None,
    options: LongThoughtOptions | None = None,
) -> LongThought:
    """The long thought of one session, with what was left out of it.

    Args:
        events: The session's event log (finished or not).
        tree: Its reasoning tree, judged and verified as the log says; None when it
            cannot be had (a damaged log): then the dialogue order, whatever the strategy.
        options: Writer options; the defaults write what `transcript.md` holds.
    """
    options = options or LongThoughtOptions()
    posed = events[0] if events and isinstance(events[0], ProblemPosed) else None
    ended = events[-1] if events and isinstance(events[-1], SessionEnded) else None
    if tree is not None and posed is not None and posed.strategy in SEARCHED_TREES:
        trials = options.trials_per_node
        if trials is None:
            trials = walk_trials_from_config(posed.config)
        walker = TreeWalkWriter(
            trials_per_node=trials,
            wrong_turns=options.wrong_turns,
        )
        walked = walker.walk(tree, ended.final_node_id if ended is not None else None)
        if walked is not None:
            return walked
    own = posed is not None and posed.strategy in OWN_REFLECTIONS
    writer = LongThoughtWriter(include_reasoning=options.include_reasoning, own_reflections=own)
    return LongThought(writer.write(events))
