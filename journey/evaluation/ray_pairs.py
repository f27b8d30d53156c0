"""DPO pairs sampled on a Ray cluster: units of problems on worker actors.

    journey pairs --model hf:models/journey --dataset train.jsonl --out /shared/pairs.jsonl \\
        --ray auto --ray-workers 8

The problems not sampled yet beside `OUT` (`pairs.samples.jsonl`) are cut into units
(`journey.runs.ray_jobs`). Each worker loads the model once and samples one unit at a
time with `PairsSampler`, into a pairs file of the unit's own,
`pairs.units/unit-0000-of-0008/pairs.jsonl` (storage every node sees); the units'
response caches are files of their own in the job's cache directory (`pairs.cache/`).
At the end the units' samples are appended to `pairs.samples.jsonl` (each problem
once), their spend and cache counts added to the job's, and the pairs and the card
drawn over the selected problems: as one process would have written them, since every
sample's seed and every draw depends on the problem, not on who sampled it.

A budget is the whole job's: once what every worker spent reaches it, no request goes
out anywhere and the card's `stopped` names it and the problems left, as one process
does (`journey.runs.ray_jobs.run_job_units`). A worker killed mid-unit is replaced
and the unit resumes from its samples; a unit left unfinished is named in `stopped` too,
and the first user error a unit raised (an endpoint down) is raised once the rest is
merged. Running the same command again resumes every unit; a job with every problem
sampled starts no worker.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from journey.evaluation.grading import Grader
from journey.evaluation.pairs import (
    NOT_SAMPLED,
    PairsCard,
    PairsOptions,
    ProblemSamples,
    samples_path,
    spend_prefix,
    write_pairs,
)
from journey.evaluation.pairs_sampling import PairsSampler, load_samples, open_samples
from journey.evaluation.ray_jobs import JobFiles, raise_unit_error, run_on_ray
from journey.evaluation.runner import MODEL_ROLE
from journey.evaluation.runner_unit import RunnerUnit
from journey.problems.dataset import ProblemRecord
from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS
from journey.runs.jobs import Fields, JobProgress
from journey.runs.ray_units import RayOptions
from journey.runs.request_accounts import SpendSettings

__all__ = ["sample_pairs_on_ray", "units_dir"]


def units_dir(out: Path) -> Path:
    """Where the units of a pairs file go: `pairs.jsonl` → `pairs.units/`."""
    return out.with_name(f"{out.stem}.units")


def _note(finished: Sequence[dict[str, Any]]) -> Fields:
    total = sum(int(unit["samples"]) for unit in finished)
    right = sum(int(unit["correct_samples"]) for unit in finished)
    return {"note": f"sample acc {right / total:.1%}" if total else ""}


def _load(samples: Path) -> Iterable[ProblemSamples]:
    return load_samples(samples).values()


def _left_for_later(
    units: Sequence[tuple[Path, Sequence[ProblemRecord]]],
    finished: Sequence[dict[str, Any]],
    done: Mapping[str, ProblemSamples],
) -> set[str]:
    """The problems the job's spent budget left unsampled: those of the units run this
    time without a line, but not in a unit whose card counts problems whose requests
    failed (the card cannot say which they were: all that unit's count as not sampled)."""
    failing = {Path(card["file"]).parent for card in finished if card["skipped"].get(NOT_SAMPLED)}
    return {
        problem.session_id
        for root, todo in units
        if root not in failing
        for problem in todo
        if problem.session_id not in done
    }


def sample_pairs_on_ray(
    options: PairsOptions,
    problems: Sequence[ProblemRecord],
    out: Path,
    ray_options: RayOptions,
    *,
    dataset: str,
    grade: Grader,
    force: bool = False,
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    progress: JobProgress | None = None,
) -> PairsCard:
    """Sample (or resume) every problem on Ray, then merge the units and write the pairs.

    Args:
        options: Model, sampling settings, pairs per problem and seed, as for `PairsSampler`.
        problems: The problems; those not sampled beside `out` are cut into units.
        out: The JSONL file of pairs.
        ray_options: The cluster and how many workers.
        dataset: The dataset file, as the card names it.
        grade: Grades one output against the gold answer (e.g. `grade_output`).
        force: Resume samples made with other settings.
        max_consecutive_errors: Each unit stops when this many problems in a row fail.
        progress: Told of each unit done (a unit is an item).

    Returns:
        The card over `problems`, as one process would have written it; `stopped` names
        the job's budget spent (with the problems left) and the units left unfinished.

    Raises:
        ConfigError: `out` is a directory or the dataset, or the samples beside it were
            made with other settings (without force).
        JourneyError: The first user error a unit raised, once the rest is merged.
    """
    open_samples(out, options, dataset=dataset, force=force)
    # The units' pairs files lie in `pairs.units/`, under the job's name, with their
    # samples and counts beside them as the job's lie beside `out`.
    files = JobFiles(out, samples_path(out), units_dir(out), prefix=spend_prefix(out))

    sampler = functools.partial(PairsSampler, grade=grade)

    def job(spending: SpendSettings) -> RunnerUnit[PairsOptions]:
        given = dataclasses.replace(options, spending=spending)
        # Each unit samples into `UNIT/<the pairs file's name>`.
        return RunnerUnit(given, sampler, files, force, max_consecutive_errors, out.name)

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
        fields=_note,
    )
    results = run.outcomes.results
    card = write_pairs(
        out,
        problems,
        run.done,
        options,
        dataset=dataset,
        failed_requests=sum(int(unit["failed_requests"]) for unit in results),
        spend=run.spend,
        left_for_later=_left_for_later(run.units, results, run.done) if run.spent else (),
    )
    raise_unit_error(run.outcomes)
    return card
