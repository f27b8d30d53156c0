"""Long thoughts: a finished session's tree written as one first-person text, the
tree walk that keeps the wrong turns, and smoothing with its faithfulness check."""

from journey.longthought.smoothing import FaithfulnessChecker, Smoother, SmoothingResult
from journey.longthought.transcript import LongThoughtWriter, first_person
from journey.longthought.tree_walk import TreeWalkWriter
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
    "first_person",
    "long_thought",
    "write_long_thought",
]
