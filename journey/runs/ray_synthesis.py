"""A synthesis run spread over a Ray cluster: units of problems on worker actors.

    journey synth --dataset math500.jsonl --out /shared/runs/m500 --ray auto --ray-workers 8

The problems are cut into units (`journey.runs.ray_jobs`: shards by index, by default
four per worker). Each worker is a Ray actor that builds its role clients once (an
embedded model loads once per worker, not per unit) and runs one unit at a time, into
the unit's own run directory under `OUT/units/` on storage every node sees. When every
unit is done, the units are merged into `OUT` (`journey merge`, responses caches
included), which is then a run like any other.

The workers' meters add up what they spent in one ledger for the job
(`journey.runs.ray_jobs.run_job_units`). A budget (`--budget-tokens`, `--budget-usd`)
is thus the whole job's: once the sum reaches it no session starts anywhere, those in
flight stop at a turn boundary, no unit is given out, and the report names the
cluster's total and the sessions left, as a run in one process does; the same command
without (or with a larger) budget resumes them.

Failures: a worker that dies mid-unit is replaced and its unit given to a worker again;
the unit resumes from the events its sessions already logged, so nothing is lost and
nothing runs twice. What the dead worker had spent, as the ledger counted it, is added
to its unit's `spend.json` before the merge, so the run's `spend.json` and report hold
it once the run ends. A unit that keeps killing its workers is left as it is, named in
the report, and resumes on the next run. Running the same command again resumes every
unit and merges again (a merge adds only what is new).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from journey.problems import ProblemRecord
from journey.protocols import Outcome
from journey.runs.jobs import Fields, JobProgress, NoProgress
from journey.runs.merge import merge_runs
from journey.runs.ray_jobs import pending_units, run_job_units
from journey.runs.ray_units import UNITS_DIR, RayOptions, Unit, unit_dirs
from journey.runs.request_accounts import stopped_line
from journey.runs.rundir import read_index
from journey.runs.spend import SpendMeter
from journey.runs.synthesis_options import SynthesisOptions
from journey.runs.synthesis_report import SynthesisReport, yield_text

__all__ = ["UNITS_DIR", "RayOptions", "run_on_ray", "unit_dirs"]

_SUMMED = (
    "skipped",
    "resumed",
    "reindexed",
    "restarted",
    "retried",
    "ran",
    "crashed",
    "solved",
    "unverified",
    "failed",
    "errors",
    "generated_tokens",
    "prompt_tokens",
    "retries",
)


class _UnitWorker:
    """One worker actor: its clients built once, then units run one after another."""

    def __init__(self, options: SynthesisOptions, runner_settings: Mapping[str, Any]) -> None:
        from journey.agents.backends import ClientPool
        from journey.agents.backends.role_endpoints import role_client

        self._loop = asyncio.new_event_loop()  # one loop: clients keep their connections
        self._options = options
        self._settings = dict(runner_settings)
        self._pool = ClientPool()
        specs = options.client_models
        self._clients = {role: role_client(spec, self._pool) for role, spec in specs.items()}

    def run_unit(
        self, problems: Sequence[ProblemRecord], root: str, dataset: Mapping[str, Any]
    ) -> dict[str, Any]:
        from journey.runs.synthesis import SynthesisRunner

        options = self._options
        cache = options.spending.cache
        if cache.directory is not None:  # a cache the units share: one database per writer
            spending = replace(
                options.spending, cache=replace(cache, writer=f"{Path(root).name}.sqlite")
            )
            options = replace(options, spending=spending)
        runner = SynthesisRunner(options, clients=self._clients, **self._settings)
        report = self._loop.run_until_complete(runner.run(Path(root), problems, dataset=dataset))
        return report.model_dump(mode="json")

    def ping(self) -> bool:
        return True


_OUTCOME_FIELDS = {
    Outcome.SOLVED: "solved",
    Outcome.UNVERIFIED: "unverified",
    Outcome.FAILED: "failed",
    Outcome.ERROR: "errors",
}


def _combine(
    reports: Sequence[Mapping[str, Any]], base: SynthesisReport, spend: SpendMeter
) -> SynthesisReport:
    """The units' reports as one: counts summed, lists joined, their spend on `spend`."""
    for unit in reports:
        for role, used in unit.get("spend", {}).items():
            spend.add(role, int(used["prompt_tokens"]), int(used["completion_tokens"]))
        for name in _SUMMED:
            setattr(base, name, getattr(base, name) + int(unit.get(name, 0)))
        base.problems.extend(unit.get("problems", []))
        for cause, count in unit.get("retries_by_cause", {}).items():
            base.retries_by_cause[cause] = base.retries_by_cause.get(cause, 0) + count
        for role, counts in unit.get("cache", {}).items():
            into = base.cache.setdefault(role, {})
            for key, value in counts.items():
                into[key] = into.get(key, 0) + value
        for role, endpoints in unit.get("endpoints", {}).items():
            base.endpoints.setdefault(role, []).extend(endpoints)
    base.spend, base.cost_usd = spend.report(), spend.cost
    return base


def _count_held(report: SynthesisReport, held: Sequence[Unit]) -> None:
    """Count the sessions that units not given out (a spent budget) finished in earlier
    runs, as their runs would have: skipped, by outcome."""
    for unit in held:
        mine = {problem.session_id for problem in unit.args[0]}
        for summary in read_index(unit.root / "sessions.jsonl").values():
            if summary.session_id in mine:
                report.skipped += 1
                name = _OUTCOME_FIELDS[Outcome(summary.outcome)]
                setattr(report, name, getattr(report, name) + 1)


def run_on_ray(
    options: SynthesisOptions,
    problems: Sequence[ProblemRecord],
    out: Path,
    ray_options: RayOptions,
    *,
    dataset: Mapping[str, Any] | None = None,
    dataset_issues: int = 0,
    progress: JobProgress | None = None,
    runner_settings: Mapping[str, Any] | None = None,
) -> SynthesisReport:
    """Run (or resume) every problem's session on Ray, then merge the units into `out`.

    Args:
        options: What each session does, as for `SynthesisRunner`.
        problems: The problems; cut into units by index.
        out: The run directory the units merge into.
        ray_options: The cluster and how many workers.
        dataset: Where the problems came from, for each unit's `run.json`.
        dataset_issues: Dataset lines skipped, for the report.
        progress: Told of each unit done (a unit is an item).
        runner_settings: More `SynthesisRunner` arguments (`force`, `retry_errors`,
            `max_consecutive_errors`), the same for every unit.

    Returns:
        The units' reports summed; `problems` names any unit left unfinished, `stopped`
        the job's budget spent (with the sessions left).

    Raises:
        ConfigError: A USD budget where a role has no price.
    """
    models = options.client_models
    totals = options.spending.meter(models)  # a USD budget needs every role's price
    count = ray_options.unit_count(len(problems))
    roots = unit_dirs(Path(out), count)
    started = time.monotonic()
    settings = dict(runner_settings or {})
    report = SynthesisReport(
        run_dir=str(out),
        strategy=options.strategy,
        sessions=len(problems),
        dataset_issues=dataset_issues,
    )
    units = pending_units(problems, roots)  # a unit's finished sessions are skipped there

    def fields(finished: Sequence[Mapping[str, Any]]) -> Fields:
        solved, done, errors, tokens = (
            sum(int(unit.get(name, 0)) for unit in finished)
            for name in ("solved", "finished", "errors", "generated_tokens")
        )
        elapsed = max(time.monotonic() - started, 1e-9)
        return {
            "yield_text": yield_text(solved, done, errors),
            "speed": f"{tokens / elapsed:.1f}",
            "note": f"{len(finished)} of {len(units)} units done",
        }

    ran = run_job_units(
        _UnitWorker,
        lambda spending: (replace(options, spending=spending), settings),
        units,
        ray_options,
        spending=options.spending,
        models=models,
        dataset=dict(dataset or {}),
        progress=progress or NoProgress(),
        fields=fields,
    )
    for lost in ran.recovered.values():  # the dead workers' spend: now in their units'
        for role, used in lost.items():
            totals.add(role, used.prompt_tokens, used.completion_tokens)
    report = _combine(ran.outcomes.results, report, totals)
    _count_held(report, ran.outcomes.held)
    report.stopped = stopped_line(ran.spent, report.sessions - report.finished, "session", out)
    report.problems.extend(ran.outcomes.left)
    report.wall_time = round(time.monotonic() - started, 3)
    report.endpoints = {role: e for role, e in report.endpoints.items() if e}
    sources = [root for root in roots if root.is_dir()]
    if not sources:
        return report
    merged = merge_runs(sources, Path(out), force=True)
    if merged.forced:
        report.problems.extend(f"merge: {line}" for line in merged.forced)
    return report
