"""One ledger for a whole job on a Ray cluster: what every worker spent, summed and kept.

    journey synth --dataset math500.jsonl --out /shared/runs/m500 --ray auto \\
        --ray-workers 8 --budget-tokens 2000000

Without Ray, a job's `SpendMeter` counts every request the job makes, says when the
budget is spent, and adds what it counted to the job's spend file when the job ends. On
Ray each unit runs in a worker of its own, each with a meter of its own, so the driver
starts a `SpendLedger` actor for the job (`job_ledger`), and every meter holds a
`LedgerLink` to it (`SpendSettings.shared`): the meter reports what its requests spent
and gets back what the job's other meters reported, and judges the budget on the sum
with the one rule every job uses (`SpendMeter.spent`); the ledger only sums. Once the
sum reaches the budget, no worker starts a new session or problem, those in flight stop
at their next turn boundary (or request), the driver gives no unit out, and the job
ends resumable, its report naming the cluster's total and what is left.

A worker that dies (a killed process, a lost node) never saves what its meter counted.
So each meter's reports name its spend file until it has saved to it, and when the job
ends the ledger's counts of every meter that never saved are added to its file (the
unit's `spend.json`), before the job merges its units: the job's spend file then holds
all the budget counted, the dead worker's included, once (the worker that resumes the
unit has a meter of its own, and a rerun a new ledger). What a worker spent on answers
it got in the last instant before it died, whose reports never left it, is not known
to anyone; a worker killed between saving and saying so has its spend counted twice.

Overshoot: a meter reports each answer as it comes (without waiting) and asks for the
others' spend when it checks the budget, at most once every `every_s` seconds
(`REPORT_EVERY_S`), and always when its unit ends. What the job spends past its budget
is thus bounded by the requests in flight across the cluster when the sum reached it,
and the requests answered within `every_s` of that on each worker (each finishes its
turn; none starts a new one).

Ray is imported only when a link talks to its ledger, in a process that runs on Ray.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journey.protocols import TokenUsage
from journey.runs import ray_units
from journey.runs.ray_units import RayOptions
from journey.runs.request_accounts import SpendSettings
from journey.runs.spend import add_spend

__all__ = [
    "REPORT_EVERY_S",
    "JobLedger",
    "LedgerLink",
    "SpendLedger",
    "job_ledger",
    "save_unsaved",
]

logger = logging.getLogger(__name__)

REPORT_EVERY_S = 0.1
"""How often at most a meter asks the job's ledger what the other meters spent, in seconds."""

Tokens = dict[str, tuple[int, int]]
"""Per role, prompt and completion tokens: what goes to and from the ledger."""


class SpendLedger:
    """What each meter of a job spent, summed, and which spend file each has not saved to
    yet (one Ray actor per job; it judges nothing)."""

    def __init__(self) -> None:
        self._spent: dict[str, Tokens] = {}  # meter -> all it reported so far
        self._unsaved: dict[str, str] = {}  # meter -> the spend file it has not saved to

    def record(self, meter: str, spent: Tokens, unsaved: str | None = None) -> None:
        """Record all `meter` has spent so far, and the spend file that does not hold it
        yet (None: it is saved, or the meter has none).

        A report carries a meter's whole spend, not what it spent since its last one, so
        the ledger keeps the latest (one caller's calls reach an actor in order)."""
        self._spent[meter] = dict(spent)
        if unsaved is None:
            self._unsaved.pop(meter, None)
        else:
            self._unsaved[meter] = unsaved

    def report(self, meter: str, spent: Tokens, unsaved: str | None = None) -> Tokens:
        """`record` these, and answer what every other meter reported, summed."""
        self.record(meter, spent, unsaved)
        return _summed(other for name, other in self._spent.items() if name != meter)

    def total(self) -> Tokens:
        """What the job's meters reported, summed."""
        return _summed(self._spent.values())

    def unsaved(self) -> dict[str, Tokens]:
        """Per spend file, what the meters that never saved to it reported, summed: once
        the job's workers are done, those of the meters whose process died."""
        files: dict[str, list[Tokens]] = {}
        for meter, file in self._unsaved.items():
            files.setdefault(file, []).append(self._spent[meter])
        return {file: _summed(spent) for file, spent in files.items()}


def _summed(reports: Iterable[Tokens]) -> Tokens:
    out: Tokens = {}
    for spent in reports:
        for role, (prompt, completion) in spent.items():
            before = out.get(role, (0, 0))
            out[role] = (before[0] + prompt, before[1] + completion)
    return out


def _tokens(usage: Mapping[str, TokenUsage]) -> Tokens:
    return {role: (used.prompt_tokens, used.completion_tokens) for role, used in usage.items()}


def _where(unsaved: Path | None) -> str | None:
    return None if unsaved is None else str(unsaved)


class LedgerLink:
    """A process's link to its job's `SpendLedger`: the `SharedSpend` of its meters.

    Args:
        ledger: The ledger's actor handle (anything whose `record.remote(...)` and
            `report.remote(...)` give what `get` turns into the ledger's answer: a
            test's fake).
        every_s: How often at most each meter asks; between, its last answer stands for
            the other meters' spend.
        get: Turns a call's reference into its answer; None: `ray.get`.
        clock: Seconds, for `every_s`.
    """

    def __init__(
        self,
        ledger: Any,
        *,
        every_s: float = REPORT_EVERY_S,
        get: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger, self._every_s, self._get, self._clock = ledger, every_s, get, clock
        self._others: dict[str, dict[str, TokenUsage]] = {}  # meter -> the others' spend
        self._asked: dict[str, float] = {}  # meter -> when it last asked

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to each worker as it is made: what this process heard stays here.
        return (_link, (self._ledger, self._every_s, self._get, self._clock))

    def report(self, meter: str, usage: Mapping[str, TokenUsage], unsaved: Path | None) -> None:
        """Send the ledger all the meter named `meter` counted so far, and the spend file
        that does not hold it yet; no answer is waited for."""
        self._ledger.record.remote(meter, _tokens(usage), _where(unsaved))

    def job_usage(
        self,
        meter: str,
        usage: Mapping[str, TokenUsage],
        unsaved: Path | None,
        *,
        now: bool = False,
    ) -> dict[str, TokenUsage]:
        """The job's tokens per role: `usage` (all the meter named `meter` counted so far,
        its `unsaved` file as `report` takes them) and what the other meters reported, as
        the ledger last said (asked again when `now`, when this meter never asked, or
        `every_s` after it last did)."""
        asked = self._asked.get(meter)
        if now or asked is None or self._clock() - asked >= self._every_s:
            call = self._ledger.report.remote(meter, _tokens(usage), _where(unsaved))
            answer: Tokens = self._resolve(call)
            self._others[meter] = {
                role: TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
                for role, (prompt, completion) in answer.items()
            }
            self._asked[meter] = self._clock()
        job = dict(usage)
        for role, used in self._others.get(meter, {}).items():
            job[role] = job.get(role, TokenUsage()) + used
        return job

    def _resolve(self, reference: Any) -> Any:
        if self._get is not None:
            return self._get(reference)
        import ray

        return ray.get(reference)


def _link(
    ledger: Any, every_s: float, get: Callable[[Any], Any] | None, clock: Callable[[], float]
) -> LedgerLink:
    return LedgerLink(ledger, every_s=every_s, get=get, clock=clock)


def save_unsaved(unsaved: Mapping[str, Tokens]) -> dict[Path, dict[str, TokenUsage]]:
    """Add what meters that never saved had reported (`SpendLedger.unsaved`) to their
    spend files; returns what was added to each (files with nothing to add left out)."""
    added: dict[Path, dict[str, TokenUsage]] = {}
    for file, spent in unsaved.items():
        usage = {
            role: TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
            for role, (prompt, completion) in spent.items()
        }
        if any(used.total for used in usage.values()):
            add_spend(Path(file), usage)
            added[Path(file)] = usage
    return added


@dataclass
class JobLedger:
    """A job's ledger while the job runs on the cluster, and what it saved at the end."""

    settings: SpendSettings
    """The job's settings as its workers get them (with a `LedgerLink` to the ledger)."""
    recovered: dict[Path, dict[str, TokenUsage]] = field(default_factory=dict)
    """Per spend file, what meters that never saved had spent (their workers died),
    added to it once the job's block ended."""


@contextmanager
def job_ledger(
    settings: SpendSettings, options: RayOptions, *, needed: bool
) -> Iterator[JobLedger]:
    """One ledger for the whole job on the cluster, while the job runs; when the block
    ends, what meters that never saved had reported is added to their spend files.

    The block must end with the job's workers done (`run_units` returns with every
    worker finished or killed), so that no meter saves after.

    Args:
        settings: The job's cache, prices and budget.
        options: The cluster (joined, or started, here).
        needed: Whether any unit will run (none: no cluster is started for a ledger).

    Yields:
        `settings` with a `LedgerLink` to a new ledger, which is gone once the block
        ends (as they are when nothing runs); `recovered` is filled as the block ends.
    """
    if not needed:
        yield JobLedger(settings)
        return
    ray = ray_units.connect(options)  # the one seam to the cluster, as the units use
    # No CPU of its own: the workers have every CPU they asked for, the ledger only adds.
    ledger = ray.remote(num_cpus=0)(SpendLedger).remote()
    job = JobLedger(dataclasses.replace(settings, shared=LedgerLink(ledger)))
    try:
        yield job
    finally:
        try:
            job.recovered = save_unsaved(ray.get(ledger.unsaved.remote()))
        except (OSError, ray.exceptions.RayError) as error:
            logger.warning("what killed workers spent could not be recorded: %s", error)
        finally:
            ray.kill(ledger)
