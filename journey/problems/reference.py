"""Reference solutions: the short human-written solution a problem's line carries.

MATH lines carry one in `solution` (ending in `\\boxed{...}`); GSM8K lines carry it in
`answer`, a rationale whose last line `#### 72` is the gold answer, with calculator
annotations such as `<<48/2=24>>`. `reference_solution` reads either from any field:

- a `####` line splits the text: before it is the reference, after it the answer it
  marks (the gold answer of a GSM8K line);
- calculator annotations `<<...>>` and Asymptote figures `[asy]...[/asy]` are removed
  (the first repeat the numbers beside them, the second are drawing coordinates);
- otherwise the answer it marks is its last `\\boxed{}` (or any mark
  `extract_final_answer` reads), and the text is the reference as it is.

Its **key results** are the numbers the reference derives: those it writes that the
problem does not (normalised, so `1,000` and `1000.0` are one number), in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from journey.problems.dataset import ProblemRecord
from journey.protocols.answers import extract_final_answer
from journey.protocols.expansion import numbers_in

__all__ = ["ReferenceSolution", "key_results", "reference_solution", "with_reference"]

_HASH_LINE = re.compile(r"^[ \t]*####(?!#)[ \t]*(?P<answer>[^\n]*)$", re.MULTILINE)
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")
_FIGURE = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ReferenceSolution:
    """A problem's reference solution, ready to be expanded."""

    text: str
    """The solution as the model is shown it."""
    answer: str | None
    """The answer it marks (`\\boxed{}` or `####`), if any."""
    key_results: tuple[str, ...]
    """The numbers it derives (in it, not in the problem), normalised."""


def key_results(reference: str, problem: str) -> tuple[str, ...]:
    """The numbers of `reference` that `problem` does not hold, each once, in order."""
    given = set(numbers_in(problem))
    return tuple(dict.fromkeys(n for n in numbers_in(reference) if n not in given))


def reference_solution(value: Any, problem: str) -> ReferenceSolution | None:
    """The reference solution a field holds, or None when it holds none (not a string,
    or blank once its answer line and annotations are removed)."""
    if not isinstance(value, str):
        return None
    text = _FIGURE.sub("", _CALCULATOR.sub("", value))
    answer: str | None = None
    lines = list(_HASH_LINE.finditer(text))
    if lines:
        answer = lines[-1].group("answer").strip() or None
        text = text[: lines[-1].start()]
    else:
        answer = extract_final_answer(text)
    text = text.strip()
    if not text:
        return None
    return ReferenceSolution(text, answer, key_results(text, problem))


def with_reference(
    record: ProblemRecord, field: str, *, answer_field: str = "answer"
) -> tuple[ProblemRecord, str | None]:
    """A dataset record made ready to expand from its reference in `field`.

    The reference goes to the record's meta under `field` (cleaned as
    `reference_solution` says). When `field` is the dataset's answer field (GSM8K's
    `answer`), the gold answer becomes the `####` answer the reference marks.

    Args:
        record: A record of `load_problems`.
        field: The field holding the reference solution.
        answer_field: The field the record's gold answer was read from.

    Returns:
        The record made ready and None; or the record unchanged and why it cannot be
        expanded (it is skipped, counted under that reason).
    """
    if field == answer_field:
        reference = reference_solution(record.answer, record.problem)
        if reference is None or reference.answer is None:
            return record, f"{field!r} marks no answer ('####' or a box) in its solution"
        answer = reference.answer
    elif field not in record.meta:
        return record, f"no {field!r} field"
    else:
        value = record.meta[field]
        if not isinstance(value, str):
            return record, f"{field!r} is not a string"
        reference = reference_solution(value, record.problem)
        if reference is None:
            return record, f"{field!r} is empty"
        answer = record.answer
    meta = {**record.meta, field: reference.text}
    ready = ProblemRecord(
        record.index, record.problem, answer, record.session_id, record.line, meta
    )
    return ready, None
