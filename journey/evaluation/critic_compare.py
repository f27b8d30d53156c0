"""Compare critic evaluations side by side (`journey eval critic compare`).

Each directory's metrics are recomputed from its records (`judgements.jsonl`), so a
half-finished run compares too. Runs judged on different selections are not directly
comparable: each run says how many of its solutions the first run also judged
(`shared`), and `shared_only` restricts every run to the solutions all of them judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from journey.errors import DatasetError
from journey.evaluation.critic_eval import load_critic_records, recorded_critic
from journey.evaluation.critic_metrics import (
    CriticEvalMetrics,
    CriticRecord,
    compute_critic_metrics,
)

__all__ = ["CriticComparedRun", "CriticComparison", "compare_critic_runs"]


class CriticComparedRun(BaseModel):
    """One critic evaluation in a comparison."""

    directory: str
    metrics: CriticEvalMetrics
    shared: int
    """Solutions judged by both this run and the first."""


class CriticComparison(BaseModel):
    """The result of `journey eval critic compare` (its --json output)."""

    runs: list[CriticComparedRun]
    types: list[str]
    """Every question type any run has, sorted."""
    shared_only: bool = False


def _read(directory: Path) -> tuple[str, list[CriticRecord]]:
    if not directory.is_dir():
        raise DatasetError(f"critic evaluation directory {str(directory)!r} does not exist")
    critic = recorded_critic(directory)
    records = load_critic_records(directory)
    if not records:
        raise DatasetError(f"{directory} holds no critic judgements yet")
    return critic, records


def compare_critic_runs(
    directories: Sequence[Path], *, shared_only: bool = False
) -> CriticComparison:
    """The metrics of critic evaluations side by side, the first as the reference.

    Raises:
        DatasetError: a directory is missing, is not a critic evaluation, or holds no
            records; or `shared_only` leaves no solution.
    """
    runs = [_read(Path(d)) for d in directories]
    first = {r.id for r in runs[0][1]}
    common = set.intersection(*({r.id for r in records} for _, records in runs))
    if shared_only and not common:
        raise DatasetError("the evaluations share no solution")
    compared: list[CriticComparedRun] = []
    types: set[str] = set()
    for directory, (critic, records) in zip(directories, runs, strict=True):
        kept = [r for r in records if r.id in common] if shared_only else records
        metrics = compute_critic_metrics(kept, critic=critic, dataset="")
        types.update(metrics.by_type)
        shared = sum(r.id in first for r in records)
        compared.append(CriticComparedRun(directory=str(directory), metrics=metrics, shared=shared))
    return CriticComparison(runs=compared, types=sorted(types), shared_only=shared_only)
