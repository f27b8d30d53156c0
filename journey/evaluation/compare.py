"""Compare evaluation directories: accuracy side by side, with a paired bootstrap CI.

The first directory is the baseline. For every other one, the difference in accuracy
is taken on the problems both directories graded (matched by problem id), and its 95%
confidence interval comes from a paired bootstrap: resample those shared problems with
replacement, `resamples` times, with a fixed seed, and take the 2.5th and 97.5th
percentiles of the resampled differences.

Each run's own accuracy (overall and per level) gets a Wilson score interval instead
(`wilson_interval`): the bootstrap interval belongs to a *difference* between two runs,
while a bar in the plot (`journey eval compare --plot`) shows one run's accuracy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from journey.errors import DatasetError
from journey.evaluation.metrics import AccuracyBucket, EvalRecord, compute_metrics
from journey.evaluation.runner import load_records, recorded_model

__all__ = [
    "ComparedRun",
    "Comparison",
    "bootstrap_difference",
    "compare_runs",
    "wilson_interval",
]


class ComparedRun(BaseModel):
    """One evaluation directory in a comparison."""

    directory: str
    model: str
    problems: int
    correct: int = 0
    accuracy: float
    by_level: dict[str, float]
    level_counts: dict[str, AccuracyBucket] = Field(default_factory=dict)
    """Problems and correct answers per level (what `by_level` was computed from)."""
    shared: int
    """Problems graded by both this run and the baseline."""
    difference: float | None
    """Accuracy minus the baseline's on the shared problems (None for the baseline)."""
    ci_low: float | None
    ci_high: float | None


class Comparison(BaseModel):
    """The result of `journey eval compare` (its --json output)."""

    runs: list[ComparedRun]
    levels: list[str]
    resamples: int
    seed: int


def bootstrap_difference(
    baseline: Sequence[bool], other: Sequence[bool], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of `other - baseline` over paired outcomes, and its 95% bootstrap interval.

    Args:
        baseline: Correctness per problem under the baseline.
        other: Correctness on the same problems, in the same order.
        resamples: Bootstrap resamples.
        seed: Seeds the resampling, so the interval is reproducible.

    Returns:
        (difference, low, high); all zero when there are no problems.
    """
    if len(baseline) != len(other):
        raise ValueError("paired outcomes must have the same length")
    count = len(baseline)
    if count == 0:
        return 0.0, 0.0, 0.0
    deltas = [int(b) - int(a) for a, b in zip(baseline, other, strict=True)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(deltas, k=count)) / count for _ in range(resamples))
    low = means[int(0.025 * (resamples - 1))]
    high = means[int(0.975 * (resamples - 1))]
    return sum(deltas) / count, low, high


def wilson_interval(correct: int, problems: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% with the default `z`).

    Chosen over the normal approximation because it stays inside [0, 1] and is not
    zero-width at 0% or 100%, which small per-level buckets often hit.

    Args:
        correct: Successes.
        problems: Trials; zero gives (0, 0).
        z: Standard-normal quantile of the interval (1.96 for 95%).

    Returns:
        (low, high), both within [0, 1].
    """
    if problems <= 0:
        return 0.0, 0.0
    p = correct / problems
    denominator = 1 + z * z / problems
    centre = (p + z * z / (2 * problems)) / denominator
    half = z * math.sqrt(p * (1 - p) / problems + z * z / (4 * problems * problems)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _read_run(directory: Path) -> tuple[str, list[EvalRecord]]:
    if not directory.is_dir():
        raise DatasetError(f"evaluation directory {str(directory)!r} does not exist")
    records = load_records(directory)
    if not records:
        raise DatasetError(f"{directory} holds no evaluation records (records.jsonl)")
    return recorded_model(directory), records


def compare_runs(
    directories: Sequence[Path], *, resamples: int = 2000, seed: int = 0
) -> Comparison:
    """Compare evaluation directories against the first one.

    Raises:
        DatasetError: a directory is missing or holds no records.
    """
    runs = [_read_run(Path(d)) for d in directories]
    _, base_records = runs[0]
    base = {r.id: r.correct for r in base_records}
    levels: set[str] = set()
    compared: list[ComparedRun] = []
    for position, (directory, (model, records)) in enumerate(zip(directories, runs, strict=True)):
        metrics = compute_metrics(records, model=model, dataset="")
        levels.update(metrics.by_level)
        shared = [r for r in records if r.id in base]
        difference = low = high = None
        if position > 0:
            difference, low, high = bootstrap_difference(
                [base[r.id] for r in shared],
                [r.correct for r in shared],
                resamples=resamples,
                seed=seed,
            )
        compared.append(
            ComparedRun(
                directory=str(directory),
                model=model,
                problems=metrics.problems,
                correct=metrics.correct,
                accuracy=metrics.accuracy,
                by_level={k: v.accuracy for k, v in metrics.by_level.items()},
                level_counts=metrics.by_level,
                shared=len(shared),
                difference=difference,
                ci_low=low,
                ci_high=high,
            )
        )
    return Comparison(runs=compared, levels=sorted(levels), resamples=resamples, seed=seed)
