"""An evaluation spread over a Ray cluster: units of problems on worker actors.

    journey eval --model hf:runs/sft --dataset math500.jsonl --out /shared/evals/sft \\
        --ray auto --ray-workers 8

The problems without a record in `OUT` are cut into units (`journey.runs.ray_jobs`).
Each worker loads the model once and evaluates one unit at a time with `EvalRunner`,
into the unit's own evaluation directory under `OUT/units/` (storage every node sees);
the units' response caches are files of their own in `OUT`'s cache directory. At the
end the units' records are appended to `OUT/records.jsonl` (each problem once), their
spend and cache counts added to `OUT`'s, and `metrics.json` written over the selected
problems: `OUT` is the evaluation one process would have written.

A budget is the whole job's: once what every worker spent reaches it, no problem starts
anywhere and the metrics' `stopped` names it and the problems left, as one process does
(`journey.runs.ray_jobs.run_job_units`). A worker killed mid-unit is replaced and
the unit resumes from its records; a unit left unfinished is named in `stopped` too,
and the first user error a unit raised (an endpoint down) is raised once the rest is
merged. Running the same command again resumes every unit; an evaluation with every
record merged starts no worker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from journey.evaluation.metrics import EvalMetrics, EvalRecord
from journey.evaluation.ray_jobs import JobFiles, raise_unit_error, run_on_ray
from journey.evaluation.runner import (
    MODEL_ROLE,
    RECORDS_FILE,
    EvalOptions,
    EvalRunner,
    load_records,
    open_manifest,
    write_metrics,
)
from journey.evaluation.runner_unit import RunnerUnit
from journey.problems.dataset import ProblemRecord
from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS
from journey.runs.jobs import Fields, JobProgress
from journey.runs.ray_units import UNITS_DIR, RayOptions
from journey.runs.request_accounts import SpendSettings

__all__ = ["evaluate_on_ray"]


def _accuracy(finished: Sequence[dict[str, Any]]) -> Fields:
    graded = sum(int(unit["problems"]) for unit in finished)
    right = sum(int(unit["correct"]) for unit in finished)
    return {"accuracy": f"acc {right / graded:.1%} ({graded} problems)" if graded else ""}


def _load(records: Path) -> list[EvalRecord]:
    return load_records(records.parent)  # `records` is always a directory's RECORDS_FILE


def evaluate_on_ray(
    options: EvalOptions,
    problems: Sequence[ProblemRecord],
    out: Path,
    ray_options: RayOptions,
    *,
    dataset: str,
    force: bool = False,
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    progress: JobProgress | None = None,
) -> EvalMetrics:
    """Evaluate (or resume) every problem on Ray, then merge the units into `out`.

    Args:
        options: The model and generation settings, as for `EvalRunner`.
        problems: The problems; those without a record in `out` are cut into units.
        out: The evaluation directory the units merge into.
        ray_options: The cluster and how many workers.
        dataset: The dataset, as `eval.json` names it.
        force: Resume an evaluation made with other settings.
        max_consecutive_errors: Each unit stops when this many problems in a row fail.
        progress: Told of each unit done (a unit is an item).

    Returns:
        The metrics over `problems`, as one process would have written them; `stopped`
        names the job's budget spent (with the problems left) and the units left
        unfinished.

    Raises:
        ConfigError: `out` holds an evaluation made with other settings (without force).
        JourneyError: The first user error a unit raised, once the rest is merged.
    """
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    open_manifest(out, options, dataset, force=force)
    files = JobFiles(output=out, results=out / RECORDS_FILE, units=out / UNITS_DIR)

    def job(spending: SpendSettings) -> RunnerUnit[EvalOptions]:
        given = dataclasses.replace(options, spending=spending)
        return RunnerUnit(given, EvalRunner, files, force, max_consecutive_errors)

    run = run_on_ray(
        job,
        problems,
        files,
        _load,
        ray_options,
        spending=options.spending,
        models={MODEL_ROLE: options.model},
        dataset=dataset,
        progress=progress,
        fields=_accuracy,
    )
    metrics = write_metrics(
        out,
        problems,
        run.done,
        options,
        dataset=dataset,
        errors=sum(int(unit["errors"]) for unit in run.outcomes.results),
        wall_seconds=time.perf_counter() - started,
        spend=run.spend,
    )
    raise_unit_error(run.outcomes)
    return metrics
