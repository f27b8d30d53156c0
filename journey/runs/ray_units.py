"""Units of problems on a Ray cluster: what `journey synth`, `eval` and `pairs` share.

    journey eval --dataset math500.jsonl --out evals/m500 --ray auto --ray-workers 8

A job run on Ray cuts its problems into units (shards by index; `RayOptions.units`, by
default four per worker). Each unit is run by a worker actor into a folder of its own
on storage every node sees, and the job merges the units' folders into its output at
the end. This module is the part that knows nothing of the job: joining or starting
the cluster (`connect`), cutting the units (`split_units`, `unit_dirs`), and running
them on a pool of worker actors (`run_units`), one unit at a time per worker. The units
still to do, run under the job's one budget, are `journey.runs.ray_jobs`'. Each job's
worker class (its clients built once per worker) and its merge live with the job:
`runs.ray_synthesis`, `evaluation.ray_eval`, `evaluation.ray_pairs`.

Each worker reserves `RayOptions.worker_cpus` CPUs and `worker_gpus` GPUs: Ray starts it
only on a node with them free and shows it only the GPUs it holds (`CUDA_VISIBLE_DEVICES`), so
a model served on a GPU by each worker needs `worker_gpus` of 1, or a fraction to put
several small ones on one GPU (Ray shares out no memory: a `vllm:` spec then needs a
`gpu_memory_utilization` to match).

Failures: a worker that dies mid-unit (a killed process, a lost node) is replaced and
its unit given to a worker again; the unit resumes from what it saved (a session's
events, a problem's record or samples), so nothing is lost and nothing runs twice. A
unit that keeps killing its workers (`max_unit_retries`), or whose work raises, is
left as it is and named; the next run resumes it.

A budget is the whole job's: its ledger (`journey.runs.ray_budget`) sums what every
worker spent, and once it is spent no unit is given out (`run_units`' `halted`, as
`journey.runs.ray_jobs.run_job_units` sets it).

Ray is an optional dependency (the `ray` extra), imported only when a job runs on it:
here, and by a budget's link to its ledger (`journey.runs.ray_budget`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journey.errors import ConfigError, error_line
from journey.problems import ProblemRecord, Shard
from journey.runs.jobs import Fields, JobProgress
from journey.runs.response_cache import CacheSettings

__all__ = [
    "UNITS_DIR",
    "RayOptions",
    "Unit",
    "UnitOutcomes",
    "connect",
    "run_units",
    "split_units",
    "unit_cache",
    "unit_dirs",
    "unit_names",
]

UNITS_DIR = "units"
_INSTALL = "pip install 'journey-learning[ray]' (or pip install ray)"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a job goes on Ray, and what each worker reserves there."""

    address: str = field(
        default="local",
        metadata={
            "help": "local starts a cluster on this machine; auto joins the one 'ray start' "
            "made here; ray://HOST:10001 connects to a remote one."
        },
    )
    workers: int = field(
        default=2,
        metadata={"help": "Worker actors; each loads its models once, not once per unit."},
    )
    units: int | None = field(
        default=None,
        metadata={
            "help": "Units the problems are cut into (default 4 per worker, at most one "
            "per problem)."
        },
    )
    max_unit_retries: int = field(
        default=3, metadata={"help": "Times a unit is given to a new worker after its worker died."}
    )
    worker_cpus: float = field(default=1.0, metadata={"help": "CPUs Ray reserves for each worker."})
    worker_gpus: float = field(
        default=0.0,
        metadata={
            "help": "GPUs Ray reserves for each worker: a worker that serves a model on a GPU "
            "(vllm:, hf: on cuda) needs one; fractions share a GPU."
        },
    )
    init_options: Mapping[str, Any] = field(
        default_factory=dict,
        metadata={"help": "More ray.init arguments (tests pass a runtime_env)."},
    )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"ray workers must be at least 1, got {self.workers}")
        if self.units is not None and self.units < 1:
            raise ConfigError(f"ray units must be at least 1, got {self.units}")
        if self.max_unit_retries < 0:
            raise ConfigError(f"max unit retries must be 0 or more, got {self.max_unit_retries}")
        # Ray would schedule any number of zero-CPU workers on one node at once.
        if not self.worker_cpus > 0:
            raise ConfigError(f"ray worker CPUs must be above 0, got {self.worker_cpus}")
        if not self.worker_gpus >= 0:
            raise ConfigError(f"ray worker GPUs must be 0 or more, got {self.worker_gpus}")

    def actor_options(self) -> dict[str, Any]:
        """What `ray.remote` reserves for each worker actor (resources, no restarts: a
        dead worker is replaced by `run_units`, which knows its unit)."""
        return {"num_cpus": self.worker_cpus, "num_gpus": self.worker_gpus, "max_restarts": 0}

    def unit_count(self, problems: int) -> int:
        return max(1, min(self.units or 4 * self.workers, problems))


def unit_names(count: int) -> list[str]:
    """The folder name of each of `count` units, in unit order."""
    return [f"unit-{i:04d}-of-{count:04d}" for i in range(count)]


def unit_dirs(out: Path, count: int) -> list[Path]:
    """The folder of each unit of the job whose output directory is `out`, in unit order."""
    return [out / UNITS_DIR / name for name in unit_names(count)]


def split_units(problems: Sequence[ProblemRecord], count: int) -> list[list[ProblemRecord]]:
    """The problems of each of `count` units: shards by index, so that the same problems
    make the same units on every run (a unit resumes in its own folder)."""
    shards = [Shard(i, count) for i in range(count)]
    return [[p for p in problems if shard.holds(p)] for shard in shards]


def unit_cache(
    settings: CacheSettings, job_root: Path, unit: str, prefix: str = ""
) -> CacheSettings:
    """A unit's response cache: the job's own cache directory (so every unit reads what
    the job, and the others, stored), written to a file of the unit's own (one database
    per writer: shared storage across machines is no place for a shared SQLite file)."""
    return dataclasses.replace(
        settings, directory=settings.location(job_root, prefix), writer=f"{unit}.sqlite"
    )


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray: {_INSTALL}") from None
    return ray


def connect(options: RayOptions) -> Any:
    """The `ray` module, joined to (or, for `local`, started as) the cluster `options` name;
    an initialised Ray (a test's cluster) is kept as it is.

    Raises:
        ConfigError: Ray is not installed.
    """
    ray = _ray()
    if not ray.is_initialized():
        address = None if options.address == "local" else options.address
        ray.init(address=address, include_dashboard=False, **options.init_options)
    return ray


@dataclass(frozen=True)
class Unit:
    """One unit of a job: its folder, and what its worker's `run_unit` is called with."""

    root: Path
    args: tuple[Any, ...]


@dataclass
class UnitOutcomes:
    """What a job's units came to."""

    results: list[Any] = field(default_factory=list)
    """What each finished unit's `run_unit` returned, in the order they finished."""
    left: list[str] = field(default_factory=list)
    """One line per unit left unfinished (its work raised, or its workers kept dying)."""
    raised: list[BaseException] = field(default_factory=list)
    """What the work of the units left unfinished raised, in order."""
    held: list[Unit] = field(default_factory=list)
    """The units not given to a worker, the job's budget being spent (in unit order)."""


def run_units(
    worker: type,
    worker_args: Sequence[Any],
    units: Sequence[Unit],
    options: RayOptions,
    *,
    progress: JobProgress,
    fields: Callable[[Sequence[Any]], Fields] = lambda results: {},
    halted: Callable[[], bool] = lambda: False,
) -> UnitOutcomes:
    """Run every unit on a pool of worker actors, a dead worker replaced and its unit retried.

    Args:
        worker: The actor class, built with `worker_args` (once per worker, and again for
            a worker that died); its `run_unit(*unit.args)` runs one unit and returns
            something Ray can send back.
        worker_args: The actor's constructor arguments.
        units: The units, given to workers in order.
        options: The cluster (joined or started here) and how many workers.
        progress: Told of each unit finished or left (a unit is an item).
        fields: The progress texts, from the results of the units finished so far.
        halted: Whether the job stops spending (its budget is spent): then no unit is
            given to a worker any more; those not given out are `held`, for the next
            run.

    Returns:
        The finished units' results, and the units left unfinished; no unit starts no
        cluster.
    """
    if not units:
        return UnitOutcomes()
    ray = connect(options)
    actor = ray.remote(**options.actor_options())(worker)
    outcomes = UnitOutcomes()
    idle = [actor.remote(*worker_args) for _ in range(min(options.workers, len(units)))]
    pending = list(range(len(units)))
    attempts = [0] * len(units)
    running: dict[Any, tuple[int, Any]] = {}  # ref -> (unit, worker)
    try:
        with progress.running(len(units), 0, fields(outcomes.results)):
            while pending or running:
                if pending and idle and halted():  # the budget is spent: the rest waits
                    outcomes.held.extend(units[number] for number in sorted(pending))
                    pending.clear()
                while pending and idle:
                    number, worker_ref = pending.pop(0), idle.pop()
                    attempts[number] += 1
                    ref = worker_ref.run_unit.remote(*units[number].args)
                    running[ref] = (number, worker_ref)
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=1)
                number, worker_ref = running.pop(done[0])
                unit = units[number]
                try:
                    outcomes.results.append(ray.get(done[0]))
                except ray.exceptions.RayTaskError as error:
                    # The unit's work raised (an endpoint down, a config refused): what it
                    # saved is kept, and the next run resumes it.
                    cause = error.cause if isinstance(error.cause, BaseException) else error
                    outcomes.left.append(f"{unit.root}: {error_line(cause)}")
                    outcomes.raised.append(cause)
                except ray.exceptions.RayActorError as error:
                    # The worker died mid-unit: a new one takes the unit, which resumes.
                    worker_ref = actor.remote(*worker_args)
                    tries = attempts[number]
                    if tries <= options.max_unit_retries:
                        pending.append(number)
                        idle.append(worker_ref)
                        progress.update(fields(outcomes.results))
                        continue
                    outcomes.left.append(
                        f"{unit.root}: its worker died {tries} times "
                        f"({type(error).__name__}); run again to resume it"
                    )
                idle.append(worker_ref)
                progress.advance(fields(outcomes.results))
    finally:
        for worker_ref in [*idle, *(w for _, w in running.values())]:
            ray.kill(worker_ref)
    return outcomes
