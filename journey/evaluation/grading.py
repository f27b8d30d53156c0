"""Grade one model output against a gold answer: extract the final answer, then compare.

Extraction is `journey.protocols.answers.extract_final_answer` (`\\boxed{}`, `####`,
"the answer is"); comparison is the verifier's `answers_match` (math-verify, with a
normalised-string fallback). This module only adds the normalisations that
`answers_match` gets wrong on MATH-style answers, each one pinned by a test:

- a currency sign, `\\$18.90` against `18.90` (math-verify reads `\\$` as nothing it can
  parse and the strings differ).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from journey.agents.verifier import answers_match
from journey.protocols import split_reasoning
from journey.protocols.answers import extract_final_answer

__all__ = ["Grade", "Grader", "grade_output", "normalise_answer", "same_answer"]

# `\$` (currency) and `\!` / `\,` / `\;` (LaTeX spacing) carry no value.
_NO_VALUE = re.compile(r"\\[$!,;]|\\(?:dollars?|text\{\s*dollars?\s*\})")


@dataclass(frozen=True)
class Grade:
    """The grade of one output."""

    predicted: str | None
    """The final answer the output marks, or None when it marks none."""
    correct: bool


class Grader(Protocol):
    """Grades a model output against the gold answer, or with the dataset's own scorer
    where it has one: `grade(output, gold, scorer)` (`grade_output` is one)."""

    def __call__(
        self, output: str, gold: str, scorer: Callable[[str], float] | None = None
    ) -> Grade: ...


def normalise_answer(answer: str) -> str:
    """`answer` without the marks that carry no value (currency signs, LaTeX spacing)."""
    return _NO_VALUE.sub("", answer).strip()


def same_answer(predicted: str, gold: str) -> bool:
    """True when `predicted` and `gold` are the same answer (see the module docstring)."""
    if answers_match(predicted, gold):
        return True
    cleaned_predicted, cleaned_gold = normalise_answer(predicted), normalise_answer(gold)
    if (cleaned_predicted, cleaned_gold) == (predicted, gold) or not cleaned_predicted:
        return False
    return answers_match(cleaned_predicted, cleaned_gold)


def grade_output(output: str, gold: str, scorer: Callable[[str], float] | None = None) -> Grade:
    """Extract the final answer `output` marks and compare it with `gold`.

    Args:
        output: The model's whole reply.
        gold: The dataset's gold answer.
        scorer: The dataset's own scorer for this problem (a reasoning-gym task's,
            `journey.problems.procedural.dataset_scorer`): full marks is correct. None
            compares with `gold` (math-verify).

    Returns:
        The extracted answer (None when there is none, which grades as wrong) and
        whether it matches.
    """
    # A reasoning model's thoughts may try answers it then rejects: grade the answer alone.
    predicted = extract_final_answer(split_reasoning(output).answer)
    if predicted is None:
        return Grade(predicted=None, correct=False)
    if scorer is not None:
        return Grade(predicted=predicted, correct=scorer(predicted) >= 1.0)
    return Grade(predicted=predicted, correct=same_answer(predicted, gold))
