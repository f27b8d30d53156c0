"""A synthesis run spread over a Ray cluster: units of problems on worker actors.

    journey synth --dataset math500.jsonl --out /shared/runs/m500 --ray auto --ray-workers 8

The problems are cut into units (shards by index, `units`, by default four per worker).
Each worker is a Ray actor that builds its role clients once (an embedded model loads
once per worker, not per unit) and runs one unit at a time, into the unit's own run
directory under `OUT/units/` on storage every node sees. When every unit is done, the
units are merged into `OUT` (`journey merge`, responses caches included), which is then
a run like any other.

Failures: a worker that dies mid-unit (a killed process, a lost node) is replaced and
its unit given to a worker again; the unit resumes from the events its sessions
already logged, so nothing is lost and nothing runs twice. A unit that keeps killing
its workers (`max_unit_retries`) is left as it is, named in the report, and resumes
on the next run. Running the same command again resumes every unit and merges again
(a merge adds only what is new).

Ray is an optional dependency (the `ray` extra), imported only here and only for such
a run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journey.errors import ConfigError
from journey.problems import ProblemRecord, Shard
from journey.runs.jobs import JobProgress, NoProgress
from journey.runs.merge import merge_runs
from journey.runs.synthesis_options import SynthesisOptions
from journey.runs.synthesis_report import SynthesisReport

__all__ = ["UNITS_DIR", "RayOptions", "run_on_ray", "unit_dirs"]

UNITS_DIR = "units"
_INSTALL = "pip install 'journey-learning[ray]' (or pip install ray)"
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


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a run goes on Ray."""

    address: str = "local"
    """`local` starts a cluster on this machine; `auto` joins the one `ray start` made
    here; `ray://HOST:10001` connects to a remote one."""
    workers: int = 2
    """Worker actors (each holds its own clients: one embedded model per worker)."""
    units: int | None = None
    """Units the problems are cut into; default four per worker (at most one per problem)."""
    max_unit_retries: int = 3
    """Times a unit is given to a new worker after its worker died."""
    worker_cpus: float = 1.0
    """CPUs Ray reserves for each worker."""
    init_options: Mapping[str, Any] = field(default_factory=dict)
    """More `ray.init` arguments (tests pass a `runtime_env`)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"ray workers must be at least 1, got {self.workers}")
        if self.units is not None and self.units < 1:
            raise ConfigError(f"ray units must be at least 1, got {self.units}")
        if self.max_unit_retries < 0:
            raise ConfigError(f"max unit retries must be 0 or more, got {self.max_unit_retries}")

    def unit_count(self, problems: int) -> int:
        return max(1, min(self.units or 4 * self.workers, problems))


def unit_dirs(out: Path, count: int) -> list[Path]:
    """The run directory of each unit, in unit order."""
    return [out / UNITS_DIR / f"unit-{i:04d}-of-{count:04d}" for i in range(count)]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray: {_INSTALL}") from None
    return ray


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

        runner = SynthesisRunner(self._options, clients=self._clients, **self._settings)
        report = self._loop.run_until_complete(runner.run(Path(root), problems, dataset=dataset))
        return report.model_dump(mode="json")

    def ping(self) -> bool:
        return True


def _combine(reports: Sequence[Mapping[str, Any]], base: SynthesisReport) -> SynthesisReport:
    """The units' reports as one: counts summed, lists joined."""
    for unit in reports:
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
    return base


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
        The units' reports summed; `problems` names any unit left unfinished.
    """
    ray = _ray()
    progress = progress or NoProgress()
    count = ray_options.unit_count(len(problems))
    shards = [Shard(i, count) for i in range(count)]
    units = [[p for p in problems if shard.holds(p)] for shard in shards]
    roots = unit_dirs(Path(out), count)
    started = time.monotonic()
    if not ray.is_initialized():
        address = None if ray_options.address == "local" else ray_options.address
        ray.init(address=address, include_dashboard=False, **ray_options.init_options)
    worker_class = ray.remote(num_cpus=ray_options.worker_cpus, max_restarts=0)(_UnitWorker)
    settings = dict(runner_settings or {})
    report = SynthesisReport(
        run_dir=str(out),
        strategy=options.strategy,
        sessions=len(problems),
        dataset_issues=dataset_issues,
    )
    finished: list[dict[str, Any]] = []
    abandoned: list[str] = []
    workers = [
        worker_class.remote(options, settings) for _ in range(min(ray_options.workers, count))
    ]
    pending = list(range(count))
    attempts = [0] * count
    running: dict[Any, tuple[int, Any]] = {}  # ref -> (unit, worker)
    with progress.running(count, 0, {"note": f"{len(workers)} workers"}):
        while pending or running:
            while pending and workers:
                unit, worker = pending.pop(0), workers.pop()
                attempts[unit] += 1
                ref = worker.run_unit.remote(units[unit], str(roots[unit]), dict(dataset or {}))
                running[ref] = (unit, worker)
            done, _ = ray.wait(list(running), num_returns=1)
            unit, worker = running.pop(done[0])
            try:
                finished.append(ray.get(done[0]))
            except ray.exceptions.RayTaskError as error:
                # The unit itself raised (an endpoint down, a config refused): its
                # sessions so far are kept and the next run resumes it.
                abandoned.append(f"unit {unit} ({roots[unit]}): {error.cause!r}")
            except ray.exceptions.RayActorError as error:
                # The worker died mid-unit: a new one takes the unit, which resumes.
                worker = worker_class.remote(options, settings)
                if attempts[unit] <= ray_options.max_unit_retries:
                    pending.append(unit)
                else:
                    abandoned.append(
                        f"unit {unit} ({roots[unit]}): its worker died {attempts[unit]} times "
                        f"({type(error).__name__}); run again to resume it"
                    )
            workers.append(worker)
            progress.advance({"note": f"{len(finished)} of {count} units done"})
    for worker in workers:
        ray.kill(worker)
    merged = merge_runs([root for root in roots if root.is_dir()], Path(out), force=True)
    report = _combine(finished, report)
    report.problems.extend(abandoned)
    report.wall_time = round(time.monotonic() - started, 3)
    report.endpoints = {role: e for role, e in report.endpoints.items() if e}
    if merged.forced:
        report.problems.extend(f"merge: {line}" for line in merged.forced)
    return report
