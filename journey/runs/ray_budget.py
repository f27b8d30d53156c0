"""One budget for a whole job on a Ray cluster: a ledger that sums what every worker spent.

    journey synth --dataset math500.jsonl --out /shared/runs/m500 --ray auto \\
        --ray-workers 8 --budget-tokens 2000000

Without Ray, a job's `SpendMeter` counts every request the job makes and says when the
budget is spent. On Ray each unit runs in a worker of its own, each with a meter of its
own, so the driver starts a `SpendLedger` actor for the job (`shared_budget`), and every
meter holds a `LedgerLink` to it (`SpendSettings.shared`): the meter reports what its
requests spent and gets back what the job's other meters reported, and judges the budget
on the sum with the one rule every job uses (`SpendMeter.spent`); the ledger only sums.
Once the sum reaches the budget, no worker starts a new session or problem, those in
flight stop at their next turn boundary (or request), the driver gives no unit out, and
the job ends resumable, its report naming the cluster's total and what is left.

Overshoot: a meter reports when a request is answered and asks when it checks the
budget, at most once every `every_s` seconds (`REPORT_EVERY_S`), and always when its
unit ends. What the job spends past its budget is thus bounded by the requests in
flight across the cluster when the sum reached it, and the requests answered within
`every_s` of that on each worker (each finishes its turn; none starts a new one).

Ray is imported only when a link talks to its ledger, in a process that runs on Ray.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from journey.protocols import TokenUsage
from journey.runs.ray_units import RayOptions, connect
from journey.runs.request_accounts import SpendSettings

__all__ = ["REPORT_EVERY_S", "LedgerLink", "SpendLedger", "shared_budget"]

REPORT_EVERY_S = 0.1
"""How often at most a meter reports to (and asks) the job's ledger, in seconds."""

Tokens = dict[str, tuple[int, int]]
"""Per role, prompt and completion tokens: what goes to and from the ledger."""


class SpendLedger:
    """What each meter of a job spent, summed (one Ray actor per job; it judges nothing)."""

    def __init__(self) -> None:
        self._spent: dict[str, Tokens] = {}  # meter -> all it reported so far

    def report(self, meter: str, spent: Tokens) -> Tokens:
        """Record all `meter` has spent so far; what every other meter reported, summed.

        A report carries a meter's whole spend, not what it spent since its last one, so
        the ledger keeps the latest (one caller's calls reach an actor in order)."""
        self._spent[meter] = dict(spent)
        return _summed(other for name, other in self._spent.items() if name != meter)

    def total(self) -> Tokens:
        """What the job's meters reported, summed."""
        return _summed(self._spent.values())


def _summed(reports: Iterable[Tokens]) -> Tokens:
    out: Tokens = {}
    for spent in reports:
        for role, (prompt, completion) in spent.items():
            before = out.get(role, (0, 0))
            out[role] = (before[0] + prompt, before[1] + completion)
    return out


class LedgerLink:
    """A process's link to its job's `SpendLedger`: the `SharedSpend` of its meters.

    Args:
        ledger: The ledger's actor handle (anything whose `report.remote(meter, spent)`
            gives what `get` turns into the ledger's answer: a test's fake).
        every_s: How often at most each meter reports and asks; between, its last
            answer stands for the other meters' spend.
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
        self._asked: dict[str, float] = {}  # meter -> when it last reported

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to each worker as it is made: what this process heard stays here.
        return (_link, (self._ledger, self._every_s, self._get, self._clock))

    def job_usage(
        self, meter: str, usage: Mapping[str, TokenUsage], *, now: bool = False
    ) -> dict[str, TokenUsage]:
        """The job's tokens per role: `usage` (all the meter named `meter` counted so far)
        and what the other meters reported, as the ledger last said (asked again when
        `now`, when this meter never asked, or `every_s` after it last did)."""
        asked = self._asked.get(meter)
        if now or asked is None or self._clock() - asked >= self._every_s:
            sent: Tokens = {
                role: (used.prompt_tokens, used.completion_tokens) for role, used in usage.items()
            }
            answer: Tokens = self._resolve(self._ledger.report.remote(meter, sent))
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


@contextmanager
def shared_budget(
    settings: SpendSettings, options: RayOptions, *, needed: bool
) -> Iterator[SpendSettings]:
    """`settings` with one ledger for the whole job on the cluster, while the job runs.

    Args:
        settings: The job's cache, prices and budget.
        options: The cluster (joined, or started, here).
        needed: Whether any unit will run (none: no cluster is started for a ledger).

    Yields:
        `settings` as they are when no budget is given (or nothing runs); else with a
        `LedgerLink` to a new ledger, which is gone once the block ends.
    """
    if not needed or not settings.budget.given:
        yield settings
        return
    ray = connect(options)
    # No CPU of its own: the workers have every CPU they asked for, the ledger only adds.
    ledger = ray.remote(num_cpus=0)(SpendLedger).remote()
    try:
        yield dataclasses.replace(settings, shared=LedgerLink(ledger))
    finally:
        ray.kill(ledger)
