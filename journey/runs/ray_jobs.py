"""A job's units run on Ray under one budget: what `journey synth`, `eval` and `pairs` share.

    journey eval --dataset math500.jsonl --out evals/m500 --ray auto --ray-workers 8

Every job on Ray goes the same way: its problems are cut into units by index, each into
a folder of its own (`pending_units`, the same units on every run; a unit with nothing
left to do is left out), and the units are run on worker actors with one ledger for the
whole job (`run_job_units`): the workers' meters add up what they spent there, the
driver's meter over the same ledger says when the budget is spent (then no unit is
given out), and what dead workers spent is added to their units' spend files when the
units are done. What follows is the job's own: synthesis merges the units' run
directories (`journey.runs.ray_synthesis`), an evaluation or a pairs job appends the
units' results and adds up their accounts (`journey.evaluation.ray_jobs`).

The pieces below it: the cluster, the units' folders and the pool of workers
(`journey.runs.ray_units`), and the job's ledger (`journey.runs.ray_budget`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journey.problems import ProblemRecord
from journey.protocols import TokenUsage
from journey.runs.jobs import Fields, JobProgress
from journey.runs.ray_budget import job_ledger
from journey.runs.ray_units import RayOptions, Unit, UnitOutcomes, run_units, split_units
from journey.runs.request_accounts import SpendSettings

__all__ = ["JobUnits", "pending_units", "run_job_units"]


def pending_units(
    problems: Sequence[ProblemRecord], roots: Sequence[Path], done: Collection[str] = ()
) -> list[tuple[Path, list[ProblemRecord]]]:
    """Each unit's folder and its problems whose id is not in `done`; units with none left
    out. The units are cut from all of `problems`, so they are the same on every run."""
    units = split_units(problems, len(roots))
    found = [
        (root, [p for p in unit if p.session_id not in done])
        for root, unit in zip(roots, units, strict=True)
    ]
    return [(root, todo) for root, todo in found if todo]


@dataclass
class JobUnits:
    """What a job's units came to on the cluster, under the job's one budget."""

    outcomes: UnitOutcomes
    spent: str | None
    """Why the job's budget is spent, as the driver's meter said at the end; None: it is not."""
    recovered: dict[Path, dict[str, TokenUsage]] = field(default_factory=dict)
    """Per spend file, what workers that died had spent (`JobLedger.recovered`), now in it."""


def run_job_units(
    worker: type,
    worker_args: Callable[[SpendSettings], Sequence[Any]],
    units: Sequence[tuple[Path, Sequence[ProblemRecord]]],
    options: RayOptions,
    *,
    spending: SpendSettings,
    models: Mapping[str, str],
    dataset: Any,
    progress: JobProgress,
    fields: Callable[[Sequence[Any]], Fields],
) -> JobUnits:
    """Run the job on each unit (its folder, its problems) on Ray workers, one budget for
    them all; nothing to run starts no cluster.

    Args:
        worker: The actor class (`run_units`); each unit is run by its
            `run_unit(problems, str(root), dataset)`.
        worker_args: The actor's constructor arguments, given the job's spend settings
            (which hold the link to the job's ledger, budget or not: a killed worker's
            spend is saved).
        units: Each unit's folder and problems.
        options: The cluster and how many workers.
        spending: The job's cache, prices and budget.
        models: The model spec of each role, to price the job's spend.
        dataset: Where the problems came from, as each unit records it.
        progress: Told of each unit done.
        fields: The progress texts, from the results of the units finished so far.

    Returns:
        What the units came to, why the job's budget is spent, and what dead workers
        had spent.
    """
    calls = [Unit(root, (list(problems), str(root), dataset)) for root, problems in units]
    with job_ledger(spending, options, needed=bool(calls)) as ledger:
        meter = ledger.settings.meter(models)  # the driver's view of what the cluster spent
        outcomes = run_units(
            worker,
            worker_args(ledger.settings),
            calls,
            options,
            progress=progress,
            fields=fields,
            halted=lambda: meter.spent() is not None,
        )
        meter.flush()
        spent = meter.spent()
    return JobUnits(outcomes, spent, ledger.recovered)
