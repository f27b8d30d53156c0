"""What a synthesis run does with each problem: `SynthesisOptions`, and its manifest.

The options are recorded in the run's `run.json` (`journey.runs.manifest`). A resume
must keep the strategy, the model of each role the strategy asks and, when it asks a
critic, the critic mode; everything else (concurrency, limits, token budgets, the
response cache, prices, the run's budget) may change, as none of it changes what a
session already logged says.

The cache, prices and budget are one `SpendSettings` (`spending`), as `journey eval`'s
and `journey pairs`' are, recorded under the same top-level keys (`cache`, `prices`,
`budget`) as before they were gathered, so older runs resume unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import InitVar, asdict, dataclass, field, replace
from typing import Any

from journey.agents import DEFAULT_CRITIC_TOKENS, CriticMode, RolloutSpec, parse_rollout_spec
from journey.agents.backends.role_endpoints import role_spec_text
from journey.errors import ConfigError
from journey.protocols import Role
from journey.runs.manifest import KIND_KEY, Manifest, SettingChange
from journey.runs.prices import ModelPrice
from journey.runs.request_accounts import SpendSettings
from journey.runs.response_cache import CacheSettings
from journey.runs.spend import RunBudget
from journey.sessions.base import SessionLimits
from journey.sessions.strategies import check_strategy_config, strategy_session

__all__ = ["MATCHED_OPTIONS", "SYNTH_KIND", "SynthesisOptions", "describe_change"]

SYNTH_KIND = "synth"
"""The kind `run.json` records for a synthesis run."""

MATCHED_OPTIONS = ("strategy", "models", "critic_mode")
"""The `run.json` settings that a resume must keep (the critic mode only where the
strategy asks a critic), and that runs merged into one must share."""

_LABELS = {"critic_mode": "critic mode", "models.policy": "policy", "models.critic": "critic"}


@dataclass(frozen=True)
class SynthesisOptions:
    """What a synthesis run does with each problem; recorded in `run.json`."""

    strategy: str = field(default="debate", metadata={"help": "How sessions are run."})
    policy: str = field(default="embedded", metadata={"help": "Model spec of the policy."})
    critic: str = field(
        default="embedded",
        metadata={
            "help": "Model spec of the critic, or rollout:SPEC?n=8 to judge each step by "
            "finishing the solution from it n times with SPEC (Math-Shepherd)."
        },
    )
    critic_mode: str = field(
        default="auto",
        metadata={"help": "How the critic decides: auto, generate or score (log-probs)."},
    )
    concurrency: int = field(default=8, metadata={"help": "Sessions running at once."})
    policy_concurrency: int | None = field(
        default=None,
        metadata={"help": "Policy requests in flight at once; None: only sessions bound them."},
    )
    critic_concurrency: int | None = field(
        default=None,
        metadata={"help": "Critic requests in flight at once; None: only sessions bound them."},
    )
    limits: SessionLimits = field(
        default_factory=SessionLimits, metadata={"help": "Turn, depth and token limits."}
    )
    step_tokens: int = field(
        default=160,
        metadata={"help": "Generation limit for one policy step (max_tokens in --policy wins)."},
    )
    critic_tokens: int = field(
        default=DEFAULT_CRITIC_TOKENS,
        metadata={
            "help": "Generation limit for one critic verdict, a reasoning critic's thoughts "
            "included (max_tokens in --critic wins)."
        },
    )
    critic_reasks: int = field(
        default=1, metadata={"help": "How often an unreadable verdict is asked again."}
    )
    strategy_config: Mapping[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Strategy settings given to every session, e.g. beam_width."},
    )
    spending: SpendSettings = field(
        default_factory=SpendSettings,
        metadata={"help": "The response cache, prices and budget of the run's requests."},
    )
    # Shorthands for one part of `spending` (`SynthesisOptions(cache=...)`, as callers
    # wrote before it was one field): given, each replaces that part; never stored.
    cache: InitVar[CacheSettings | None] = None
    prices: InitVar[Mapping[str, ModelPrice] | None] = None
    budget: InitVar[RunBudget | None] = None

    def __post_init__(
        self,
        cache: CacheSettings | None,
        prices: Mapping[str, ModelPrice] | None,
        budget: RunBudget | None,
    ) -> None:
        if cache is not None or prices is not None or budget is not None:
            given = self.spending
            spending = SpendSettings(
                cache=given.cache if cache is None else cache,
                prices=given.prices if prices is None else prices,
                budget=given.budget if budget is None else budget,
            )
            object.__setattr__(self, "spending", spending)
        # Raises on an unknown strategy, or on settings it does not take or refuses:
        # checked once here, not in every session.
        check_strategy_config(self.strategy, self.strategy_config, self.limits)
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency!r}")
        for role, limit in self.request_limits.items():
            if limit is not None and limit < 1:
                raise ConfigError(f"{role} concurrency must be at least 1, got {limit!r}")
        for name in ("step_tokens", "critic_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.critic_reasks < 0:
            raise ConfigError(f"critic_reasks must be 0 or more, got {self.critic_reasks!r}")
        self.rollout  # noqa: B018 -- a malformed rollout spec is refused here, not mid-run
        try:
            CriticMode(self.critic_mode)
        except ValueError:
            raise ConfigError(
                f"critic mode {self.critic_mode!r} is not one of auto, generate, score"
            ) from None

    @property
    def roles(self) -> tuple[Role, ...]:
        """The roles the strategy asks, policy first (`propose-critique`: the policy alone)."""
        asked = strategy_session(self.strategy).roles
        return tuple(role for role in (Role.POLICY, Role.CRITIC) if role in asked)

    @property
    def models(self) -> dict[str, str]:
        """Model spec per role the strategy asks, normalised (so `embedded?seed=1` and its
        reordering match). A role the strategy never asks is neither built nor recorded.

        Raises:
            ModelSpecError: a spec names no backend.
        """
        models = self.client_models
        rollout = self.rollout
        if rollout is not None and "critic" in models:
            models["critic"] = str(replace(rollout, model=models["critic"]))
        return models

    @property
    def client_models(self) -> dict[str, str]:
        """The model spec each asked role's client is built from, normalised: `models`,
        less a rollout judge's settings (the cache and prices know models, not judges)."""
        rollout = self.rollout
        specs = {
            Role.POLICY: self.policy,
            Role.CRITIC: self.critic if rollout is None else rollout.model,
        }
        return {role.value: role_spec_text(specs[role]) for role in self.roles}

    @property
    def rollout(self) -> RolloutSpec | None:
        """The rollout judge `critic` names (`rollout:SPEC?n=8`); None: a critic agent."""
        return parse_rollout_spec(self.critic)

    @property
    def request_limits(self) -> dict[str, int | None]:
        """Requests in flight allowed per role; None where only `concurrency` bounds them."""
        return {"policy": self.policy_concurrency, "critic": self.critic_concurrency}

    def record(self) -> dict[str, Any]:
        """The options as `run.json` keeps them."""
        return {
            "strategy": self.strategy,
            "models": self.models,
            "critic_mode": self.critic_mode,
            "concurrency": self.concurrency,
            "policy_concurrency": self.policy_concurrency,
            "critic_concurrency": self.critic_concurrency,
            "limits": asdict(self.limits),
            "step_tokens": self.step_tokens,
            "critic_tokens": self.critic_tokens,
            "critic_reasks": self.critic_reasks,
            **({"strategy_config": dict(self.strategy_config)} if self.strategy_config else {}),
            **self.spending.record(),
        }

    def manifest(self, dataset: Mapping[str, Any]) -> Manifest:
        """The run as `run.json` records it: the options and where the problems came from."""
        record = {**self.record(), "dataset": dict(dataset)}
        critic_asked = Role.CRITIC in self.roles
        matched = {k for k in MATCHED_OPTIONS if k != "critic_mode" or critic_asked}
        return Manifest(SYNTH_KIND, record, free=frozenset(record) - matched)


def describe_change(change: SettingChange) -> str:
    """A change as a refused synthesis resume names it: `critic mode 'generate' (now 'auto')`."""
    if change.name == KIND_KEY:
        return str(change)
    label = _LABELS.get(change.name, change.name)
    return f"{label} {change.recorded!r} (now {change.wanted!r})"
