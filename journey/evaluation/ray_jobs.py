"""What `journey eval` and `journey pairs` share on Ray: a worker holding one model, the
units still to run, and the units' results and spend merged into the job's.

Both jobs run each unit as a job of their own kind in the unit's folder (an evaluation
directory, a pairs file), on a worker that builds the model client once
(`ModelUnitWorker`: an embedded model loads once per worker, not per unit). A problem
the job already has a result for (a record, samples) goes to no unit, so a finished
job runs again without starting a worker. The job then appends to its own results
file the units' results it lacks (`merge_results`), and adds what their requests spent
and their caches did to its own `spend.json` and `cache.json` (`absorb_accounts`):
only what each unit's files grew by since the last merge, recorded beside the units
(`accounts.json`), so that merging again adds nothing twice and a unit left unfinished
still counts. `run_on_ray` does all of that; `ray_eval` and `ray_pairs` give it their
files (`JobFiles`) and write their metrics or pairs from what it merged (`JobRun`).

Cutting the units and running them under one budget is what every job on Ray does
(`journey.runs.ray_jobs`): the workers' meters add up what they spent in the job's
ledger; once the sum reaches it, no problem starts on any worker and no unit is given
out, and the job says so in its `stopped` line (`stopped_text`), with the problems left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from autogen_core.models import ChatCompletionClient

from journey.agents.backends.cached_client import CacheMode
from journey.errors import JourneyError
from journey.problems.dataset import ProblemRecord
from journey.runs.files import write_atomic
from journey.runs.jobs import Fields, JobProgress, NoProgress
from journey.runs.merge import add_cache_counts, recorded_cache_counts, recorded_spend_counts
from journey.runs.ray_jobs import pending_units, run_job_units
from journey.runs.ray_units import RayOptions, UnitOutcomes, unit_cache, unit_names
from journey.runs.request_accounts import (
    RequestAccounts,
    SpendReport,
    SpendSettings,
    stopped_line,
)
from journey.runs.response_cache import CacheSettings
from journey.runs.role_counts import Counts, add_counts, counts_since

__all__ = [
    "ACCOUNTS_FILE",
    "JobFiles",
    "JobRun",
    "ModelUnitWorker",
    "UnitJob",
    "UnitResult",
    "absorb_accounts",
    "merge_results",
    "raise_unit_error",
    "run_on_ray",
    "stopped_text",
]

logger = logging.getLogger(__name__)

ACCOUNTS_FILE = "accounts.json"
"""Beside the units: each unit's spend and cache counts when the job last added them up."""


class UnitJob(Protocol):
    """A job as a worker runs it on one unit; Ray sends it to the workers, so it pickles."""

    def client(self) -> ChatCompletionClient:
        """The model client, built once per worker."""
        ...

    async def run(
        self,
        client: ChatCompletionClient,
        problems: Sequence[ProblemRecord],
        root: Path,
        dataset: str,
    ) -> dict[str, Any]:
        """Run (or resume) the unit in its folder `root`; its report as JSON."""
        ...


class UnitResult(Protocol):
    """One problem's result as a job appends it (an `EvalRecord`, a `ProblemSamples`)."""

    @property
    def id(self) -> str: ...  # the problem's session id

    def model_dump_json(self) -> str: ...  # one JSON line, without its newline


ResultT = TypeVar("ResultT", bound=UnitResult)


@dataclass(frozen=True)
class JobFiles:
    """Where a job on Ray keeps its results, its accounts and its units' folders: its
    spend and cache counts lie beside its results file, named with `prefix`, and each
    unit keeps its own under the same names in its folder, as the job in one process
    would. Ray sends it to the workers inside the job (`UnitJob`), so it pickles."""

    output: Path
    """What a rerun resumes (an evaluation directory, a pairs file), as `stopped` names it."""
    results: Path
    """The job's appended results file (`records.jsonl`, `pairs.samples.jsonl`)."""
    units: Path
    """The folder of the units' folders, and of the ledger (`ACCOUNTS_FILE`)."""
    prefix: str = ""
    """Before the names of the spend and cache counts files ("pairs.")."""

    def unit_roots(self, count: int) -> list[Path]:
        """The folder of each of `count` units, in unit order."""
        return [self.units / name for name in unit_names(count)]

    def unit_spending(self, spending: SpendSettings, unit: Path) -> SpendSettings:
        """The job's spend settings as the unit in folder `unit` runs them: its response
        cache a file of its own in the job's cache directory (`unit_cache`)."""
        cache = unit_cache(spending.cache, self.results.parent, unit.name, self.prefix)
        return dataclasses.replace(spending, cache=cache)


@dataclass(frozen=True)
class JobRun(Generic[ResultT]):
    """What a job's units came to, merged into the job's files by `run_on_ray`."""

    done: dict[str, ResultT]
    """Every result of the job, by problem id, earlier runs' included."""
    spend: SpendReport
    """What this run's requests did and cost, with why the job stopped (`stopped`)."""
    outcomes: UnitOutcomes
    units: list[tuple[Path, list[ProblemRecord]]]
    """The units this run had to do: each one's folder and its problems without a result."""
    spent: str | None
    """Why the job's budget is spent; None: it is not."""


class ModelUnitWorker:
    """One worker actor: a model client, then units run one after another."""

    def __init__(self, job: UnitJob) -> None:
        self._job = job
        self._loop = asyncio.new_event_loop()  # one loop: the client keeps its connections
        self._client: ChatCompletionClient | None = None

    def run_unit(
        self, problems: Sequence[ProblemRecord], root: str, dataset: str
    ) -> dict[str, Any]:
        # Built with the first unit rather than the actor: a model spec that cannot be
        # built is then that unit's error, named once, not a worker dying again and again.
        if self._client is None:
            self._client = self._job.client()
        run = self._job.run(self._client, problems, Path(root), dataset)
        return self._loop.run_until_complete(run)


def run_on_ray(
    job: Callable[[SpendSettings], UnitJob],
    problems: Sequence[ProblemRecord],
    files: JobFiles,
    load: Callable[[Path], Iterable[ResultT]],
    options: RayOptions,
    *,
    spending: SpendSettings,
    models: Mapping[str, str],
    dataset: str,
    progress: JobProgress | None,
    fields: Callable[[Sequence[Any]], Fields],
) -> JobRun[ResultT]:
    """Run the problems without a result in `files` on Ray, then merge the units' results
    and accounts into the job's files (the job writes its summary from them).

    Args:
        job: The job as the workers run it (`ModelUnitWorker`), given its spend settings
            (which hold the link to the job's ledger).
        problems: All the job's problems; those with a result already go to no unit.
        files: Where the job and its units keep their files.
        load: Reads a results file (the job's, or a unit's).
        progress: Told of each unit done (a unit is an item); the rest as for
            `journey.runs.ray_jobs.run_job_units`.
    """
    roots = files.unit_roots(options.unit_count(len(problems)))
    units = pending_units(problems, roots, {result.id for result in load(files.results)})
    ran = run_job_units(
        ModelUnitWorker,
        lambda shared: (job(shared),),
        units,
        options,
        spending=spending,
        models=models,
        dataset=dataset,
        progress=progress or NoProgress(),
        fields=fields,
    )
    outcomes, spent = ran.outcomes, ran.spent
    made = [root for root in roots if root.is_dir()]
    done = merge_results(files.results, made, load)
    ledger = files.units / ACCOUNTS_FILE
    spend = absorb_accounts(
        spending, models, files.results.parent, made, ledger=ledger, prefix=files.prefix
    )
    left = sum(problem.session_id not in done for problem in problems)
    spend.stopped = stopped_text(spent, left, files.output, outcomes)
    return JobRun(done, spend, outcomes, units, spent)


def merge_results(
    results: Path, units: Sequence[Path], load: Callable[[Path], Iterable[ResultT]]
) -> dict[str, ResultT]:
    """Append to the job's `results` file the units' results it lacks (each unit keeps
    its own under the same name in its folder), so that merging again adds nothing
    twice; every result of the job, by id."""
    done = {result.id: result for result in load(results)}
    new: list[ResultT] = []
    for unit in units:
        for result in load(unit / results.name):
            if result.id not in done:
                done[result.id] = result
                new.append(result)
    if new:
        with results.open("a", encoding="utf-8") as sink:
            sink.writelines(result.model_dump_json() + "\n" for result in new)
    return done


def stopped_text(spent: str | None, left: int, where: Path, outcomes: UnitOutcomes) -> str | None:
    """Why the job stopped with problems left, in one line: its budget spent (as a job in
    one process says it), units left unfinished; None when neither.

    Args:
        spent: Why the job's budget is spent, or None.
        left: The job's problems without a result once the units are merged.
        where: What a rerun resumes (the job's output).
        outcomes: What the units came to.
    """
    parts = [stopped_line(spent, left, "problem", where)]
    if outcomes.left:
        parts.append(f"units left unfinished: {'; '.join(outcomes.left)}")
    return "; ".join(part for part in parts if part) or None


def raise_unit_error(outcomes: UnitOutcomes) -> None:
    """Raise the first user error a unit's work raised (an endpoint down, a model that
    would not load), as the job run in one process would have; a bug's error stays a
    line of `outcomes.left`.

    Raises:
        JourneyError: the first one a unit raised.
    """
    for error in outcomes.raised:
        if isinstance(error, JourneyError):
            raise error


def _read_ledger(path: Path) -> dict[str, dict[str, Counts]]:
    if not path.is_file():
        return {}
    try:
        found: dict[str, dict[str, Counts]] = json.loads(path.read_text(encoding="utf-8"))
        return found
    except ValueError as error:
        logger.warning("%s is damaged (%s): the units' counts are added again", path, error)
        return {}


def _unit_counts(unit: Path, prefix: str) -> dict[str, Counts]:
    return {
        "spend": recorded_spend_counts(unit, prefix=prefix),
        "cache": recorded_cache_counts(unit, prefix=prefix),
    }


def absorb_accounts(
    settings: SpendSettings,
    models: Mapping[str, str],
    root: Path,
    units: Sequence[Path],
    *,
    ledger: Path,
    prefix: str = "",
) -> SpendReport:
    """Add what the units' requests spent, and their caches did, since the last call to
    the job's files; report it as what this run's requests did.

    Args:
        settings: The job's prices (the units kept the cache, and judged the budget).
        models: The model spec of each role.
        root: The job's folder (an evaluation directory, the folder of a pairs file).
        units: The units' folders, their files named with the same `prefix` as the job's.
        ledger: Where each unit's counts are kept once added (`ACCOUNTS_FILE`).
        prefix: Before the names of the spend and cache counts files ("pairs.").

    Returns:
        This run's cache counts, tokens and cost, and what the job paid over all runs.
    """
    absorbed = _read_ledger(ledger)
    counts_only = dataclasses.replace(settings, cache=CacheSettings(mode=CacheMode.OFF))
    accounts = RequestAccounts(counts_only, models, root, prefix=prefix)
    cache: Counts = {}
    for unit in units:
        now = _unit_counts(unit, prefix)
        before = absorbed.get(unit.name, {})
        for role, grown in counts_since(now["spend"], before.get("spend", {})).items():
            accounts.meter.add(
                role, grown.get("prompt_tokens", 0), grown.get("completion_tokens", 0)
            )
        add_counts(cache, counts_since(now["cache"], before.get("cache", {})))
        absorbed[unit.name] = now
    accounts.close()  # adds the tokens to the job's spend file
    if cache:
        add_cache_counts(root, cache, prefix=prefix)
    if units:
        write_atomic(ledger, json.dumps(absorbed, indent=2, sort_keys=True) + "\n")
    return accounts.report().model_copy(update={"cache": cache})
