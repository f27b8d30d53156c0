"""Held-out problems: the evaluation set a training set must not contain.

A small task space draws the same problem under different seeds (products of one-digit
factors), and a run directory can hold sessions of any dataset (a copied or merged run),
so the exports check every session's problem against the held-out set, not only the
dataset a synthesis started from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from journey.problems.dataset import load_problems
from journey.problems.ids import problem_key

__all__ = ["HeldOutProblems"]


@dataclass(frozen=True)
class HeldOutProblems:
    """The problems of an evaluation set, compared by text (spacing and case evened out)."""

    source: str
    """Where they came from: the dataset spec, as cards and markers record it."""
    keys: frozenset[str]

    @classmethod
    def of(cls, source: str, problems: Iterable[str]) -> HeldOutProblems:
        return cls(source, frozenset(problem_key(p) for p in problems))

    @classmethod
    def load(cls, dataset: str) -> HeldOutProblems:
        """The problems of a `--dataset` (file, hf:, rg:), read with the default fields.

        Raises:
            DatasetError: the dataset cannot be read or holds no problem.
            ConfigError: a malformed spec.
        """
        return cls.of(dataset, (record.problem for record in load_problems(dataset).records))

    def __contains__(self, problem: object) -> bool:
        return isinstance(problem, str) and problem_key(problem) in self.keys

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "problems": len(self.keys)}
