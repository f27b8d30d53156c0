"""An evaluation spread over a Ray cluster: units of problems on worker actors.

    journey eval --model hf:runs/sft --dataset math500.jsonl --out /shared/evals/sft \\
        --ray auto --ray-workers 8

The problems without a record in `OUT` are cut into units (`journey.runs.ray_units`).
Each worker loads the model once and evaluates one unit at a time with `EvalRunner`,
into the unit's own evaluation directory under `OUT/units/` (storage every node sees);
the units' response caches are files of their own in `OUT`'s cache directory. At the
end the units' records are appended to `OUT/records.jsonl` (each problem once), their
spend and cache counts added to `OUT`'s, and `metrics.json` written over the selected
problems: `OUT` is the evaluation one process would have written.

A budget is the whole job's: once what every worker spent reaches it, no problem starts
anywhere and the metrics' `stopped` names it and the problems left, as one process does
(`journey.evaluation.ray_jobs.run_job_units`). A worker killed mid-unit is replaced and
the unit resumes from its records; a unit left unfinished is named in `stopped` too,
and the first user error a unit raised (an endpoint down) is raised once the rest is
merged. Running the same command again resumes every unit; an evaluation with every
record merged starts no worker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient

from journey.evaluation.metrics import EvalMetrics, EvalRecord
from journey.evaluation.ray_jobs import (
    ACCOUNTS_FILE,
    absorb_accounts,
    pending_units,
    raise_unit_error,
    run_job_units,
    stopped_text,
)
from journey.evaluation.runner import (
    MODEL_ROLE,
    RECORDS_FILE,
    EvalOptions,
    EvalRunner,
    load_records,
    open_manifest,
    write_metrics,
)
from journey.problems.dataset import ProblemRecord
from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS
from journey.runs.jobs import Fields, JobProgress, NoProgress
from journey.runs.ray_units import UNITS_DIR, RayOptions, unit_cache, unit_dirs
from journey.runs.request_accounts import SpendSettings

__all__ = ["evaluate_on_ray"]


@dataclass(frozen=True)
class _EvalUnit:
    """An evaluation as a worker runs it on one unit."""

    options: EvalOptions
    out: Path
    force: bool
    max_consecutive_errors: int

    def client(self) -> ChatCompletionClient:
        return self.options.client()

    async def run(
        self,
        client: ChatCompletionClient,
        problems: Sequence[ProblemRecord],
        root: Path,
        dataset: str,
    ) -> dict[str, Any]:
        spending = self.options.spending
        cache = unit_cache(spending.cache, self.out, root.name)
        options = dataclasses.replace(
            self.options, spending=dataclasses.replace(spending, cache=cache)
        )
        runner = EvalRunner(
            options,
            client=client,
            force=self.force,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        metrics = await runner.run(root, problems, dataset=dataset)
        return metrics.model_dump(mode="json")


def _accuracy(finished: Sequence[dict[str, Any]]) -> Fields:
    graded = sum(int(unit["problems"]) for unit in finished)
    right = sum(int(unit["correct"]) for unit in finished)
    return {"accuracy": f"acc {right / graded:.1%} ({graded} problems)" if graded else ""}


def _merge_records(out: Path, units: Sequence[Path]) -> dict[str, EvalRecord]:
    """Append the units' records `out` lacks to its records file; every record, by id."""
    done = {record.id: record for record in load_records(out)}
    new: list[EvalRecord] = []
    for unit in units:
        for record in load_records(unit):
            if record.id not in done:
                done[record.id] = record
                new.append(record)
    if new:
        with (out / RECORDS_FILE).open("a", encoding="utf-8") as sink:
            sink.writelines(record.model_dump_json() + "\n" for record in new)
    return done


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
    roots = unit_dirs(out, ray_options.unit_count(len(problems)))
    units = pending_units(problems, roots, {record.id for record in load_records(out)})

    def job(spending: SpendSettings) -> _EvalUnit:
        given = dataclasses.replace(options, spending=spending)
        return _EvalUnit(given, out, force, max_consecutive_errors)

    outcomes, spent = run_job_units(
        job,
        units,
        ray_options,
        spending=options.spending,
        models={MODEL_ROLE: options.model},
        dataset=dataset,
        progress=progress or NoProgress(),
        fields=_accuracy,
    )
    made = [root for root in roots if root.is_dir()]
    records = _merge_records(out, made)
    spend = absorb_accounts(
        options.spending,
        {MODEL_ROLE: options.model},
        out,
        made,
        ledger=out / UNITS_DIR / ACCOUNTS_FILE,
    )
    left = sum(problem.session_id not in records for problem in problems)
    spend.stopped = stopped_text(spent, left, out, outcomes)
    metrics = write_metrics(
        out,
        problems,
        records,
        options,
        dataset=dataset,
        errors=sum(int(unit["errors"]) for unit in outcomes.results),
        wall_seconds=time.perf_counter() - started,
        spend=spend,
    )
    raise_unit_error(outcomes)
    return metrics
