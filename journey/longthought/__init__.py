"""Long thoughts: a finished session's tree written as one first-person text, the
tree walk that keeps the wrong turns, and smoothing with its faithfulness check."""

from journey.longthought.smoothing import FaithfulnessChecker, Smoother, SmoothingResult
from journey.longthought.transcript import LongThoughtWriter, first_person
from journey.longthought.tree_walk import (
    TreeWalkWriter,
    WrongTurns,
    wrong_turns_choice,
    wrong_turns_of_flags,
)
from journey.longthought.writer import (
    LongThought,
    LongThoughtOptions,
    long_thought,
    write_long_thought,
)

__all__ = [
    "FaithfulnessChecker",
    "LongThought",
    "LongThoughtOptions",
    "LongThoughtWriter",
    "Smoother",
    "SmoothingResult",
    "TreeWalkWriter",
    "WrongTurns",
    "first_person",
    "long_thought",
    "write_long_thought",
    "wrong_turns_choice",
    "wrong_turns_of_flags",
]
