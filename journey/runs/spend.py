"""What a job spends: tokens sent to models per role, their cost, and the job's budget.

Each role's client in a job (`journey synth`, `eval`, `pairs`) sits behind a
`MeteredClient` under the response cache, so the `SpendMeter` counts exactly the
requests that reached a model in this invocation (a cache hit costs nothing). The meter
prices them with the roles' prices (`journey.runs.prices`) and says when a `RunBudget`
is spent: the job then starts no new item, and items in flight stop at their next
turn boundary (a session) or request (a problem's samples), resumable. A job whose
meters are in several processes (on Ray) shares one budget: each meter is given a
`SharedSpend`, where the job's meters add up what they spent, and judges the budget on
that sum (`journey.runs.ray_budget`). What every
invocation spent is added up in `RUN/spend.json` (`NAME.spend.json` beside a job's
output file `NAME.jsonl`), which `journey stats` reads and `journey merge` sums. A
shared meter tells the job its spend file until it has saved to it, so that what a
meter in a process that died had counted still reaches its file (the job adds it).

The job-level part (the settings a job is given, the accounts around its clients,
their report) is in `journey.runs.request_accounts`; its names are still found here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autogen_core.models import ChatCompletionClient, CreateResult

from journey.agents.backends.delegating import DelegatingClient
from journey.errors import ConfigError
from journey.protocols import TokenUsage
from journey.runs.files import write_atomic
from journey.runs.prices import RolePrice, total_cost

__all__ = [
    "SPEND_FILE",
    "MeteredClient",
    "RunBudget",
    "SharedSpend",
    "SpendMeter",
    "add_spend",
    "cost_text",
    "read_spend",
    "recorded_spend",
    "write_spend",
]

logger = logging.getLogger(__name__)

SPEND_FILE = "spend.json"
"""In the run directory: each role's tokens sent to its model, summed over invocations."""


def cost_text(usd: float | None) -> str:
    """A cost as reports show it: `$0.0123`, `$12.35`, or `—` when unknown."""
    if usd is None:
        return "—"
    return f"${usd:,.2f}" if usd >= 10 else f"${usd:.4f}"


@dataclass(frozen=True)
class RunBudget:
    """When a run stops spending: tokens or dollars of this invocation's model requests."""

    tokens: int | None = field(
        default=None,
        metadata={
            "help": "Stop the run once this invocation's model requests (with --ray, every "
            "worker's) have used this many tokens, prompt + generated (cache hits are free); "
            "resumable."
        },
    )
    usd: float | None = field(
        default=None,
        metadata={
            "help": "Stop the run once this invocation's model requests (with --ray, every "
            "worker's) cost this many US dollars (every role needs a price); resumable."
        },
    )

    def __post_init__(self) -> None:
        if self.tokens is not None and self.tokens < 1:
            raise ConfigError(f"the token budget must be at least 1, got {self.tokens!r}")
        if self.usd is not None and not self.usd > 0:
            raise ConfigError(f"the USD budget must be more than 0, got {self.usd!r}")

    @property
    def given(self) -> bool:
        return self.tokens is not None or self.usd is not None

    def record(self) -> dict[str, Any]:
        """The budget as a manifest records it (only what was given)."""
        return {k: v for k, v in (("tokens", self.tokens), ("usd", self.usd)) if v is not None}


class SharedSpend(Protocol):
    """Where the meters of one job, in whatever process, add up what they spent (one
    budget for the job: `journey.runs.ray_budget.LedgerLink`); it only sums, and keeps
    what each meter has not saved yet, for the job to add to its file should the
    meter's process die first."""

    def report(self, meter: str, usage: Mapping[str, TokenUsage], unsaved: Path | None) -> None:
        """Tell the job all the meter named `meter` counted so far, without waiting.

        Args:
            meter: The meter's name, unique in the job.
            usage: Every role's tokens that meter counted so far.
            unsaved: The spend file those tokens are still to be added to (None: they
                are in it, or the meter has none).
        """
        ...

    def job_usage(
        self,
        meter: str,
        usage: Mapping[str, TokenUsage],
        unsaved: Path | None,
        *,
        now: bool = False,
    ) -> dict[str, TokenUsage]:
        """The job's tokens per role: `usage` (all the meter named `meter` counted so far,
        reported when due, with its `unsaved` file as `report` takes them) and what the
        job's other meters reported.

        Args:
            meter: The asking meter's name, unique in the job.
            usage: Every role's tokens that meter counted so far.
            unsaved: The spend file those tokens are still to be added to, or None.
            now: Report and ask at once, rather than use a recent answer.
        """
        ...


class SpendMeter:
    """Tokens each role sent to its model in this invocation, their cost, the budget.

    Args:
        prices: Each role's price (or why it has none).
        budget: When to stop spending.
        shared: Where the job's meters add up their spend, when the job's budget is
            shared with meters in other processes (None: this meter's spend is the job's).
        file: The spend file `save` adds this meter's tokens to (None: it saves none).

    Raises:
        ConfigError: a USD budget where a role has no price.
    """

    def __init__(
        self,
        prices: Mapping[str, RolePrice],
        budget: RunBudget | None = None,
        shared: SharedSpend | None = None,
        *,
        file: Path | None = None,
    ) -> None:
        self.prices = dict(prices)
        self.budget = budget or RunBudget()
        missing = [p.missing for p in self.prices.values() if p.missing is not None]
        if self.budget.usd is not None and missing:
            raise ConfigError(f"--budget-usd needs every role's price: {'; '.join(missing)}")
        self.usage: dict[str, TokenUsage] = {role: TokenUsage() for role in self.prices}
        self.file = file
        self._saved = False
        self._shared = shared
        self._name = uuid.uuid4().hex  # this meter among the job's, to the shared sum

    def wrap(self, role: str, client: ChatCompletionClient) -> MeteredClient:
        """`client`, its answers counted as `role`'s."""
        self.usage.setdefault(role, TokenUsage())
        return MeteredClient(client, self, role)

    def add(self, role: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.usage[role] = self.usage.get(role, TokenUsage()) + TokenUsage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        if self._shared is not None:  # the job hears of every answer (nothing waits)
            self._shared.report(self._name, self.usage, self._unsaved())

    def _unsaved(self) -> Path | None:
        return None if self._saved else self.file

    def job_usage(self, *, now: bool = False) -> dict[str, TokenUsage]:
        """Each role's tokens the job used: this meter's, and with a shared budget those
        every other meter of the job reported (`now`: asked at once, not a recent answer)."""
        if self._shared is None:
            return dict(self.usage)
        return self._shared.job_usage(self._name, self.usage, self._unsaved(), now=now)

    def flush(self) -> None:
        """Report what this meter counted to the job's shared sum now (at its end)."""
        self.job_usage(now=True)

    @property
    def tokens(self) -> int:
        """Prompt + completion tokens of every role."""
        return sum(used.total for used in self.usage.values())

    def role_cost(self, role: str) -> float | None:
        return self._cost_of(role, self.usage.get(role, TokenUsage()))

    def _cost_of(self, role: str, used: TokenUsage) -> float | None:
        price = self.prices.get(role)
        return None if price is None else price.cost(used)

    @property
    def cost(self) -> float | None:
        """Every role's cost in USD; None when a role has no price."""
        return total_cost(self.role_cost(role) for role in self.usage)

    def spent(self) -> str | None:
        """Why the budget is spent ("budget: 10,000 tokens spent"), or None while it is not;
        judged on what the whole job used (every meter's, when the budget is shared)."""
        limit = self.budget
        if not limit.given:
            return None
        usage = self.job_usage()
        tokens = sum(used.total for used in usage.values())
        if limit.tokens is not None and tokens >= limit.tokens:
            return f"budget: {limit.tokens:,} tokens spent ({tokens:,} used)"
        cost = total_cost(self._cost_of(role, used) for role, used in usage.items())
        if limit.usd is not None and cost is not None and cost >= limit.usd:
            return f"budget: {cost_text(limit.usd)} spent ({cost_text(cost)} used)"
        return None

    def report(self) -> dict[str, dict[str, Any]]:
        """Per role: tokens sent to the model, the cost (None: no price), the price used."""
        out: dict[str, dict[str, Any]] = {}
        for role, used in self.usage.items():
            price = self.prices.get(role)
            out[role] = {
                "prompt_tokens": used.prompt_tokens,
                "completion_tokens": used.completion_tokens,
                "usd": self.role_cost(role),
                "price": None
                if price is None or price.price is None
                else {**price.price.record(), "source": price.price.source},
                **({"missing": price.missing} if price is not None and price.missing else {}),
            }
        return out

    def save(self) -> None:
        """Add this meter's tokens to its spend file, once (0 for a job that asked nothing:
        it paid nothing), then tell a shared sum they are there.

        A process killed between the two leaves them to be added again by the job (see
        `journey.runs.ray_budget`): counted twice in that instant, never missing."""
        if self.file is None or self._saved:
            return
        if self.usage:
            add_spend(self.file, self.usage)
        self._saved = True
        self.flush()


def write_spend(path: Path, totals: Mapping[str, TokenUsage]) -> None:
    """Write a spend file: each role's tokens, roles sorted."""
    text = {role: used.model_dump() for role, used in sorted(totals.items())}
    write_atomic(path, json.dumps(text, indent=2) + "\n")


def add_spend(path: Path, usage: Mapping[str, TokenUsage]) -> None:
    """Add each role's tokens to those the spend file at `path` holds (written if none)."""
    totals = read_spend(path)
    for role, used in usage.items():
        totals[role] = totals.get(role, TokenUsage()) + used
    write_spend(path, totals)


def read_spend(path: Path) -> dict[str, TokenUsage]:
    """Each role's tokens in the spend file at `path`; empty when there is none."""
    if not path.is_file():
        return {}
    try:
        raw: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return {role: TokenUsage.model_validate(used) for role, used in raw.items()}
    except (ValueError, TypeError, AttributeError) as error:
        logger.warning("%s is damaged (%s): its spend counts start again", path, error)
        return {}


def recorded_spend(run_root: Path, *, prefix: str = "") -> dict[str, TokenUsage]:
    """Each role's tokens sent to its model over the run's invocations; empty when none
    were recorded (`prefix`: before the file's name, as `RequestAccounts`' files)."""
    return read_spend(run_root / f"{prefix}{SPEND_FILE}")


class MeteredClient(DelegatingClient):
    """`inner`, the usage of each answer it gives counted on `meter` for `role`."""

    def __init__(self, inner: ChatCompletionClient, meter: SpendMeter, role: str) -> None:
        super().__init__(inner)
        self._meter, self._role = meter, role

    def _answered(self, result: CreateResult) -> None:
        if not result.cached:  # a cache hit reached no model: nothing was spent
            self._meter.add(self._role, result.usage.prompt_tokens, result.usage.completion_tokens)
