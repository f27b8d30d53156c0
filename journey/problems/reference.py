"""Reference solutions: the short human-written solution a problem's line carries.

MATH lines carry one in `solution` (ending in `\\boxed{...}`); GSM8K lines carry it in
`answer`, a rationale whose last line `#### 72` is the gold answer, with calculator
annotations such as `<<48/2=24>>`; `load_problems` takes the `####` answer as the gold
and keeps the rationale in the record's meta under the answer field's name, so
`with_reference(record, "answer")` finds it. `reference_solution` reads either from
any field:

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from journey.protocols.answers import extract_final_answer
from journey.protocols.expansion import numbers_in

if TYPE_CHECKING:
    # Only for types: `dataset` reads GSM8K lines with `split_answer_line`, so importing
    # it here at run time would go round in a circle.
    from journey.problems.dataset import ProblemRecord

__all__ = [
    "ReferenceSolution",
    "calculator_annotations",
    "key_results",
    "reference_solution",
    "split_answer_line",
    "with_reference",
]

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


def split_answer_line(text: str) -> tuple[str, str] | None:
    """A GSM8K rationale cut at its last `#### answer` line.

    Returns:
        The text before that line and the answer it marks (stripped; empty for a bare
        `####`), or None when no line marks an answer.
    """
    lines = list(_HASH_LINE.finditer(text))
    if not lines:
        return None
    return text[: lines[-1].start()], lines[-1].group("answer").strip()


def calculator_annotations(text: str) -> list[str]:
    """The calculator annotations of a GSM8K rationale (`<<48/2=24>>`), in order."""
    return _CALCULATOR.findall(text)


def reference_solution(value: Any, problem: str) -> ReferenceSolution | None:
    """The reference solution a field holds, or None when it holds none (not a string,
    or blank once its answer line and annotations are removed)."""
    if not isinstance(value, str):
        return None
    text = _FIGURE.sub("", _CALCULATOR.sub("", value))
    answer: str | None
    split = split_answer_line(text)
    if split is not None:
        text, marked = split
        answer = marked or None
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
    `reference_solution` says). A GSM8K line's rationale is in the meta under the
    answer field already (`load_problems` keeps it there and takes its `####` answer as
    the gold), so `field="answer"` finds it. When `field` is the answer field and the
    meta has no rationale (a record not read by `load_problems`), the gold answer
    becomes the answer the reference marks.

    Args:
        record: A record of `load_problems`.
        field: The field holding the reference solution.
        answer_field: The field the record's gold answer was read from.

    Returns:
        The record made ready and None; or the record unchanged and why it cannot be
        expanded (it is skipped, counted under that reason).
    """
    if field in record.meta:
        value = record.meta[field]
        if not isinstance(value, str):
            return record, f"{field!r} is not a string"
        reference = reference_solution(value, record.problem)
        if reference is None:
            return record, f"{field!r} is empty"
        answer = record.answer
    elif field == answer_field:
        reference = reference_solution(record.answer, record.problem)
        if reference is None or reference.answer is None:
            return record, f"{field!r} marks no answer ('####' or a box) in its solution"
        answer = reference.answer
    else:
        return record, f"no {field!r} field"
    return replace(record, answer=answer, meta={**record.meta, field: reference.text}), None
