"""Step-labelled solutions: a problem, a solution split into steps, and where it first
goes wrong. What `journey eval critic` judges a critic against.

A dataset is JSONL (or a Hugging Face dataset, as `load_problems` reads one), one
solution a line; a `StepLabelLayout` (`journey.problems.step_layouts`: MR-GSM8K's by
default, ProcessBench's, PRM800K's, or changed with `--field-map`) says where each
part lies. The first error is read either from an index (`first_error`, counted from
`first_error_base`; null or negative: no error) or from per-step `ratings` (the first
negative number or `false` is the first error; a solution whose ratings stop before
its last step without a wrong one is not fully labelled, and is skipped).

Nothing is repaired: a line without a problem, without steps, or whose first error
lies outside its steps becomes a `DatasetIssue` naming `file:line`, counted and
skipped (or raised with `strict`), as `journey.problems.dataset` does for problems.
Blank steps (the empty lines of a program-of-thought solution) are left out and the
first error renumbered to match; a first error on a blank step is an issue.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from journey.errors import ConfigError, DatasetError
from journey.problems.dataset import DatasetIssue, json_type, read_json_lines
from journey.problems.ids import session_id_for
from journey.problems.source import load_hf_rows, parse_dataset_source
from journey.problems.step_layouts import (
    DEFAULT_LAYOUT,
    LAYOUTS,
    MISSING,
    StepLabelLayout,
    value_at,
)

__all__ = [
    "LabelledSolution",
    "LabelledSolutions",
    "load_labelled_solutions",
]


@dataclass(frozen=True)
class LabelledSolution:
    """One solution, its steps, and its first wrong step."""

    index: int
    """0-based position among the source's non-blank lines (bad ones count too)."""
    id: str
    problem: str
    steps: tuple[str, ...]
    first_error: int | None
    """1-based number of the first wrong step; None when every step is correct."""
    answer: str | None = None
    type: str | None = None
    line: int = 0
    """1-based line in the file; 0 for a Hugging Face row (its row is `index`)."""


@dataclass(frozen=True)
class LabelledSolutions:
    """The usable solutions of a source, and the issues of the lines that were skipped."""

    source: str
    solutions: list[LabelledSolution]
    issues: list[DatasetIssue]

    def select(
        self,
        *,
        offset: int = 0,
        limit: int | None = None,
        sample: int | None = None,
        seed: int = 0,
    ) -> list[LabelledSolution]:
        """Solutions `offset .. offset + limit`, then `sample` of them drawn at random.

        A sample is the same for the same seed (a resumed run judges the same
        solutions), kept in file order; it matters where a file is sorted, as MR-GSM8K's
        is (its solutions with an error come first).

        Raises:
            ConfigError: a negative offset, a limit or sample under 1, or an offset past
                the end.
        """
        if offset < 0:
            raise ConfigError(f"offset must be 0 or more, got {offset!r}")
        for name, count in (("limit", limit), ("sample", sample)):
            if count is not None and count < 1:
                raise ConfigError(f"{name} must be at least 1, got {count!r}")
        if offset and offset >= len(self.solutions):
            raise ConfigError(
                f"offset {offset} is past the end of {self.source} "
                f"({len(self.solutions)} solutions)"
            )
        chosen = self.solutions[offset : None if limit is None else offset + limit]
        if sample is None or sample >= len(chosen):
            return chosen
        drawn = random.Random(seed).sample(range(len(chosen)), sample)
        return [chosen[position] for position in sorted(drawn)]


_Parsed = LabelledSolution | str
"""A line's solution (its index and line filled in later), or what is wrong with it."""


def load_labelled_solutions(
    path: Path | str,
    layout: StepLabelLayout | None = None,
    *,
    strict: bool = False,
    split: str | None = None,
) -> LabelledSolutions:
    """Read step-labelled solutions from a JSONL file or a Hugging Face dataset.

    Args:
        path: The file, or `hf:NAME[:CONFIG][@SPLIT]` or a Hub id (as `load_problems`).
        layout: Where the parts lie (default: MR-GSM8K's).
        strict: Raise on the first bad line instead of skipping it.
        split: The split of a Hugging Face dataset.

    Raises:
        DatasetError: the source cannot be read, holds no usable solution, or (with
            `strict`) a line is bad; the message names `file:line` (or `source row N`).
    """
    layout = layout or LAYOUTS[DEFAULT_LAYOUT]
    source = parse_dataset_source(path, split=split)
    unit: Literal["line", "row"]
    if source.kind == "hf":
        rows, source = load_hf_rows(source)
        safe = (json.loads(json.dumps(row, default=str)) for row in rows)
        parsed: Iterable[tuple[int, _Parsed]] = (
            (row, _parse_solution(value, layout)) for row, value in enumerate(safe)
        )
        unit = "row"
    else:
        parsed = (
            (number, error if error is not None else _parse_solution(value, layout))
            for number, value, error in read_json_lines(Path(source.name))
        )
        unit = "line"
    return _collect(str(source), parsed, unit=unit, strict=strict)


def _collect(
    source: str,
    parsed: Iterable[tuple[int, _Parsed]],
    *,
    unit: Literal["line", "row"],
    strict: bool,
) -> LabelledSolutions:
    solutions: list[LabelledSolution] = []
    issues: list[DatasetIssue] = []
    seen: set[str] = set()
    for index, (where, result) in enumerate(parsed):
        if isinstance(result, str):
            issue = DatasetIssue(source, where, result, unit)
            if strict:
                raise DatasetError(str(issue))
            issues.append(issue)
            continue
        solution_id = result.id
        if solution_id in seen:  # a repeated id or solution: its own, equally stable, id
            solution_id = f"{solution_id}-{index}"
        seen.add(solution_id)
        line = where if unit == "line" else 0
        solutions.append(replace(result, index=index, id=solution_id, line=line))
    if not solutions:
        if issues:
            raise DatasetError(
                f"no usable solution in {source}: all {len(issues)} {unit}s are bad "
                f"(first: {issues[0]})"
            )
        raise DatasetError(f"dataset {source!r} holds no solutions")
    return LabelledSolutions(source, solutions, issues)


def _text(value: Any) -> str | None:
    """A string or a number as text; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_solution(value: Any, layout: StepLabelLayout) -> _Parsed:
    if not isinstance(value, dict):
        return f"expected a JSON object, got {json_type(value)}"
    problem = value_at(value, layout.problem)
    if problem is MISSING:
        return f"no {layout.problem!r} field (fields: {', '.join(sorted(value)) or 'none'})"
    if not isinstance(problem, str) or not problem.strip():
        return f"{layout.problem!r} must be a non-empty string, got {json_type(problem)}"
    steps = value_at(value, layout.steps)
    if steps is MISSING or steps is None:
        return f"no {layout.steps!r} field (fields: {', '.join(sorted(value)) or 'none'})"
    if not isinstance(steps, list) or not steps:
        return f"{layout.steps!r} must be a non-empty list of strings, got {json_type(steps)}"
    for number, step in enumerate(steps, 1):
        if not isinstance(step, str):
            return f"step {number} of {layout.steps!r} must be a string, got {json_type(step)}"
    first_error = (
        _first_error_index(value, layout, len(steps))
        if layout.first_error is not None
        else _first_error_rating(value, layout, len(steps))
    )
    if isinstance(first_error, str):
        return first_error
    # A blank step (an empty line of a program) has nothing to judge: it is left out and
    # the first error renumbered; a first error on a blank step cannot be judged at all.
    if first_error is not None and not steps[first_error - 1].strip():
        return f"the first wrong step, step {first_error}, is blank"
    if first_error is not None:
        first_error = sum(1 for step in steps[:first_error] if step.strip())
    texts = tuple(step.strip() for step in steps if step.strip())
    if not texts:
        return f"every step of {layout.steps!r} is blank"
    found_id = _text(value_at(value, layout.id)) if layout.id else None
    answer = _text(value_at(value, layout.answer)) if layout.answer else None
    group = value_at(value, layout.type) if layout.type else None
    return LabelledSolution(
        index=0,
        id=found_id or session_id_for("\n".join((problem, *texts))),
        problem=problem.strip(),
        steps=texts,
        first_error=first_error,
        answer=answer,
        type=None if group is None or group is MISSING else str(group),
    )


def _first_error_index(
    value: dict[str, Any], layout: StepLabelLayout, count: int
) -> int | str | None:
    assert layout.first_error is not None
    found = value_at(value, layout.first_error)
    if found is MISSING:
        return f"no {layout.first_error!r} field (null when every step is correct)"
    if found is None:
        return None
    if not isinstance(found, int) or isinstance(found, bool):
        return f"{layout.first_error!r} must be a step index or null, got {json_type(found)}"
    if found < 0:
        return None
    number = found - layout.first_error_base + 1
    if not 1 <= number <= count:
        return (
            f"{layout.first_error!r} is {found}, outside the {count} steps "
            f"(counted from {layout.first_error_base})"
        )
    return number


def _first_error_rating(
    value: dict[str, Any], layout: StepLabelLayout, count: int
) -> int | str | None:
    assert layout.ratings is not None
    ratings = value_at(value, layout.ratings)
    if not isinstance(ratings, list):
        return f"no list of step ratings at {layout.ratings!r}"
    labelled = 0
    for rating in ratings[:count]:
        if rating is MISSING or rating is None:
            break  # unlabelled from here on
        if not isinstance(rating, int | float):
            return f"step {labelled + 1}'s rating at {layout.ratings!r} is {json_type(rating)}"
        if rating is False or (not isinstance(rating, bool) and rating < 0):
            return labelled + 1
        labelled += 1
    if labelled == count:
        return None
    return f"only {labelled} of {count} steps are rated and none is wrong: not fully labelled"
