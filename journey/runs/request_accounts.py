"""A job's requests, role by role: the response cache, prices and budget around each
role's client (`journey synth`, `eval`, `pairs`), and what they came to.

`SpendSettings` are the cache, prices and budget a job is given (the manifest records
them); `RequestAccounts` puts them around the job's clients: each request seeded from
its content where the model takes a seed (`journey.agents.backends.seeded_client`, so
reruns sample alike whatever order requests arrive in), answered from the cache
(`journey.runs.response_cache`) where it can, the rest metered, priced and held to the
budget (`journey.runs.spend`), added up in the job's files when it closes; its
`SpendReport` says what this invocation did and what the job paid over all of them.
A job spread over processes (on Ray) gives each its settings with the job's
`SharedSpend` (`journey.runs.ray_budget`), so that every process holds its requests to
the one budget of the job, and what a process that dies had spent still reaches its
spend file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel

from journey.agents.backends.role_endpoints import role_specs
from journey.agents.backends.seeded_client import seeded
from journey.runs.prices import ModelPrice, PriceTable, prices_record, total_cost
from journey.runs.response_cache import CacheSettings, RunCache
from journey.runs.spend import SPEND_FILE, RunBudget, SharedSpend, SpendMeter, recorded_spend

__all__ = ["SPEND_SETTINGS", "RequestAccounts", "SpendReport", "SpendSettings", "stopped_line"]

SPEND_SETTINGS = ("cache", "prices", "budget")
"""The manifest keys of `SpendSettings.record()`: a resume may change every one."""


@dataclass(frozen=True)
class SpendSettings:
    """The response cache, prices and budget of a job's requests (synth, eval, pairs)."""

    cache: CacheSettings = field(
        default_factory=CacheSettings,
        metadata={"help": "Where the response cache is and whether it is read and written."},
    )
    prices: Mapping[str, ModelPrice] = field(
        default_factory=dict,
        metadata={
            "help": "Prices of models by name (a YAML or JSON file: model -> {in, out}, USD "
            "per million tokens), over journey's dated table; a spec's price_in/price_out win."
        },
    )
    budget: RunBudget = field(
        default_factory=RunBudget,
        metadata={"help": "When this invocation stops spending: tokens or US dollars."},
    )
    shared: SharedSpend | None = field(
        default=None,
        compare=False,
        metadata={
            "help": "Where the job's meters in other processes add up their spend, so that "
            "the budget is the whole job's (a Ray job's ledger); never recorded."
        },
    )

    def meter(self, models: Mapping[str, str], *, file: Path | None = None) -> SpendMeter:
        """A meter for roles with these model specs, saving to the spend file `file`.

        Raises:
            ConfigError: a USD budget where a role has no price.
        """
        prices = PriceTable(self.prices).for_roles(models)
        return SpendMeter(prices, self.budget, self.shared, file=file)

    def record(self) -> dict[str, Any]:
        """The settings as a manifest records them (prices and budget only when given)."""
        return {
            "cache": self.cache.record(),
            **({"prices": prices_record(self.prices)} if self.prices else {}),
            **({"budget": self.budget.record()} if self.budget.given else {}),
        }


class SpendReport(BaseModel):
    """What a job's requests did in one invocation and what the job paid over all of
    them; the reports of `journey eval` and `journey pairs` carry these fields, that of
    `journey synth` all but what was paid."""

    cache: dict[str, dict[str, int]] = {}
    """What each role's response cache did in this invocation: hits, misses, stored,
    tokens saved (empty with the cache off)."""
    spend: dict[str, dict[str, Any]] = {}
    """Per role, what reached its model in this invocation (cache hits are free): prompt
    and completion tokens, the cost in USD (None: no price), the price and its source."""
    cost_usd: float | None = None
    """Every role's cost in this invocation; None when a role has no price."""
    paid: dict[str, dict[str, Any]] = {}
    """Per role, the tokens that reached its model over every invocation, and their cost
    at this invocation's price (None: no price)."""
    paid_usd: float | None = None
    stopped: str | None = None
    """Why the job stopped before every item finished (a budget spent), in one line."""


class RequestAccounts:
    """A job's requests, role by role: answered from the response cache where it can, the
    rest metered, priced and held to the budget; added up in the job's files at `close`.

    Args:
        settings: The cache, prices and budget.
        models: The model spec of each role.
        root: The job's directory (a run's, an evaluation's, or the folder of an output
            file).
        prefix: Before the names of its files: "" in a directory of its own, "pairs."
            beside `pairs.jsonl` (`pairs.cache/`, `pairs.cache.json`, `pairs.spend.json`).

    Raises:
        ConfigError: a USD budget where a role has no price.
    """

    def __init__(
        self, settings: SpendSettings, models: Mapping[str, str], root: Path, *, prefix: str = ""
    ) -> None:
        self.models = dict(models)
        self.meter = settings.meter(self.models, file=root / f"{prefix}{SPEND_FILE}")
        self._cache = RunCache(settings.cache, root, prefix=prefix)
        self._root, self._prefix = root, prefix
        self._closed = False

    def wrap(self, role: str, client: ChatCompletionClient) -> ChatCompletionClient:
        """`client` as `role`'s: each sampled request seeded from its content where the
        model takes a seed (`seeded_client`), then the cache, then the meter of what
        reaches the model."""
        spec = self.models[role]
        return seeded(self._cache.wrap(role, self.meter.wrap(role, client), spec), role_specs(spec))

    def halted(self) -> bool:
        """Whether the budget is spent: no new item (or request) should start."""
        return self.meter.spent() is not None

    def close(self) -> None:
        """Add this invocation's counts to the job's files and close the cache (once); the
        rest of a shared budget's job hears of all it spent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.meter.save()
            self._cache.save()
        finally:
            self._cache.close()

    def report(self, left: int = 0, noun: str = "item", where: Path | None = None) -> SpendReport:
        """This invocation's counts and costs, and all the job paid (read once closed).

        Args:
            left: Items not finished; with a spent budget, `stopped` names them.
            noun: What an item is ("problem").
            where: What a rerun resumes, as `stopped` names it.
        """
        paid: dict[str, dict[str, Any]] = {}
        for role, used in recorded_spend(self._root, prefix=self._prefix).items():
            price = self.meter.prices.get(role)
            usd = 0.0 if used.total == 0 else price.cost(used) if price else None
            paid[role] = {**used.model_dump(), "usd": usd}
        stopped = stopped_line(self.meter.spent(), left, noun, where or self._root)
        return SpendReport(
            cache={role: stats.as_dict() for role, stats in self._cache.stats().items()},
            spend=self.meter.report(),
            cost_usd=self.meter.cost,
            paid=paid,
            paid_usd=total_cost(p["usd"] for p in paid.values()) if paid else None,
            stopped=stopped,
        )


def stopped_line(spent: str | None, left: int, noun: str, where: Path) -> str | None:
    """Why a job stopped with items left, as its report says it; None when it did not.

    Args:
        spent: Why the budget is spent (`SpendMeter.spent`), or None.
        left: Items not finished.
        noun: What an item is ("problem").
        where: What a rerun resumes.
    """
    if spent is None or left <= 0:
        return None
    again = f"run the same command again to resume {where}"
    return f"{spent}; {left} {noun}{'' if left == 1 else 's'} left: {again}"
