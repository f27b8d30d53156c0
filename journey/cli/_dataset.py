"""The problems a job command runs on: loaded, their skipped lines said, selected, and
described for the run's manifest (`synth` and `expand` share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from journey.cli._app import warn

if TYPE_CHECKING:
    from journey.problems import ProblemRecord


@dataclass(frozen=True)
class ProblemSelection:
    problems: list[ProblemRecord]
    issues: int
    """Dataset lines (rows) skipped as bad."""
    source: dict[str, Any]
    """Where the problems came from and how they were chosen, as `run.json` keeps it."""


def select_problems(
    dataset: str,
    *,
    split: str | None,
    problem_field: str,
    answer_field: str,
    strict: bool,
    offset: int,
    limit: int | None,
    shard: str | None,
) -> ProblemSelection | None:
    """Load `dataset`, warn of each skipped line, take the selection; None (after saying
    so) when the selection is empty."""
    from journey.problems import Shard, load_problems
    from journey.problems.dataset import issue_lines

    chosen_shard = Shard.parse(shard) if shard else None
    data = load_problems(
        dataset, problem_field=problem_field, answer_field=answer_field, strict=strict, split=split
    )
    for line in issue_lines(data.issues):
        warn("skipped", line, sep=" ")
    problems = data.select(offset=offset, limit=limit, shard=chosen_shard)
    if not problems:
        warn(f"no problems in shard {chosen_shard}", "nothing to do")
        return None
    source = {
        **(data.source.record() if data.source else {"path": dataset}),
        "problem_field": problem_field,
        "answer_field": answer_field,
        "offset": offset,
        "limit": limit,
        "shard": str(chosen_shard) if chosen_shard else None,
        "problems": len(problems),
    }
    return ProblemSelection(problems, len(data.issues), source)
