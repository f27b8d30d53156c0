"""The sections of a `journey iterate` recipe, each checked by the step it configures.

Synthesis settings are `journey synth`'s, export settings `journey export`'s, training
settings `journey train sft|dpo`'s and evaluation settings `journey eval`'s, with the
same defaults; each section builds (or is checked by) that command's own options, so a
value the command would refuse is refused here, before any work. Nothing here imports
torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journey.agents.backends.spec import parse_model_spec
from journey.errors import JourneyError
from journey.exports.options import ExportOptions
from journey.longthought import LongThoughtOptions, WrongTurns, wrong_turns_of_flags
from journey.runs.synthesis_options import SynthesisOptions
from journey.sessions.base import SessionLimits

__all__ = [
    "BASE",
    "EXPORT_FORMAT",
    "NONE",
    "DPOSettings",
    "DatasetChoice",
    "EvalSettings",
    "ExportSettings",
    "LimitSettings",
    "MatchMode",
    "PairsSettings",
    "PhaseChoice",
    "SetName",
    "Settings",
    "SynthSettings",
    "TrainingSettings",
    "checked_spec",
    "value_error_of",
]

MatchMode = Literal["none", "rows", "tokens"]
"""How the arms' training data are equalised: not at all, to the smallest arm's row
count, or to its token count (`iterate_match`)."""
SetName = Literal["shortcut", "journey", "revision"]
"""The SFT sets a round exports: `journey export --format shortcut`, `--format sft` and
`--format revision` (critiques answered, to teach a debate's policy to use them)."""
EXPORT_FORMAT: dict[str, str] = {"shortcut": "shortcut", "journey": "sft", "revision": "revision"}
"""The `journey export` format of each set."""
BASE = "base"
"""The name of the round's starting policy among its evaluations."""
NONE = "none"
_ARM_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def value_error_of(check: Callable[..., object], *args: Any) -> None:
    """Run a config's own check; its complaint becomes a validation error of the key."""
    try:
        check(*args)
    except JourneyError as error:
        raise ValueError(str(error)) from None


def checked_spec(value: str) -> str:
    value_error_of(parse_model_spec, value)
    return value


class Settings(BaseModel):
    """A recipe section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetChoice(Settings):
    """Problems: a `--dataset` source and which of its records to take."""

    source: str = Field(min_length=1, description="Any --dataset form (file, hf:, rg:...).")
    split: str | None = Field(default=None, description="Split of a Hugging Face dataset.")
    offset: int = Field(default=0, ge=0, description="Skip this many problems first.")
    limit: int | None = Field(default=None, ge=1, description="Take at most this many.")
    problem_field: str = "problem"
    answer_field: str = "answer"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    def for_round(self, number: int) -> DatasetChoice:
        """The choice with `{round}` in its source replaced by `number`."""
        return self.model_copy(update={"source": self.source.replace("{round}", str(number))})

    def record(self) -> dict[str, Any]:
        """As manifests and step markers keep it."""
        return self.model_dump(mode="json")


class LimitSettings(Settings):
    """When a session stops (`journey synth --max-turns/--max-depth/--max-tokens`)."""

    max_turns: int = Field(default=SessionLimits.max_turns, ge=1)
    max_depth: int = Field(default=SessionLimits.max_depth, ge=1)
    max_tokens: int = Field(default=SessionLimits.max_tokens, ge=1)


class SynthSettings(Settings):
    """How each round's synthesis runs (`journey synth`'s options)."""

    strategy: str = "debate"
    critic_mode: str = "auto"
    concurrency: int = Field(default=8, ge=1)
    limits: LimitSettings = LimitSettings()
    step_tokens: int = Field(default=160, ge=1)
    critic_tokens: int = Field(default=1024, ge=1)
    critic_reasks: int = Field(default=1, ge=0)
    strategy_config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_to_synth(self) -> SynthSettings:
        value_error_of(self.options, "embedded", "embedded")  # strategy, settings, mode
        return self

    def options(self, policy: str, critic: str) -> SynthesisOptions:
        """The synthesis options of a round with these models.

        Raises:
            ConfigError: an unknown strategy or critic mode, or settings it refuses.
        """
        return SynthesisOptions(
            strategy=self.strategy,
            policy=policy,
            critic=critic,
            critic_mode=self.critic_mode,
            concurrency=self.concurrency,
            limits=SessionLimits(**self.limits.model_dump()),
            step_tokens=self.step_tokens,
            critic_tokens=self.critic_tokens,
            critic_reasks=self.critic_reasks,
            strategy_config=dict(self.strategy_config),
        )


_LEGACY_WRONG_TURNS = frozenset({"reasoned_trials_only", "followed_corrections_only"})
"""The two booleans that spelt `wrong_turns` before it was one choice."""


class ExportSettings(Settings):
    """Which SFT sets each round exports from its synthesis, and with which filters."""

    sets: tuple[SetName, ...] = Field(default=("shortcut", "journey"), min_length=1)
    cumulative: bool = Field(
        default=False, description="Export from every round's synthesis so far, not this one's."
    )
    layout: str = "prompt-completion"
    same_problems: bool = True
    min_reflections: int = 0
    min_backtracks: int = 0
    max_violations: int | None = None
    keywords: tuple[str, ...] = ()
    max_tokens: int | None = None
    transcript: str = "smoothed"
    credit_verified_path: bool = False
    walk_trials: int | None = Field(
        default=None,
        ge=0,
        description="Failed branches a beam tree's walk enters per correct step "
        "(`journey export --walk-trials`); None: the run's own setting.",
    )
    policy_reasoning: bool = Field(
        default=False, description="Put the policy's thoughts in the long thought."
    )
    wrong_turns: WrongTurns = Field(
        default=WrongTurns.ALL,
        description="The failed branches a beam tree's walk may enter: all, reasoned or "
        "followed (`journey export --wrong-turns`).",
    )

    @model_validator(mode="before")
    @classmethod
    def _wrong_turns_of_flags(cls, data: Any) -> Any:
        """Recipes (and recorded iterations) of earlier versions named the choice with two
        booleans, `reasoned_trials_only` and `followed_corrections_only`: read as it."""
        if not isinstance(data, dict) or not _LEGACY_WRONG_TURNS & data.keys():
            return data
        flags = {key: data[key] for key in _LEGACY_WRONG_TURNS if key in data}
        if "wrong_turns" in data:
            raise ValueError(f"give wrong_turns alone, without {', '.join(sorted(flags))}")
        rest = {key: value for key, value in data.items() if key not in flags}
        choice = wrong_turns_of_flags(
            reasoned_trials_only=bool(flags.get("reasoned_trials_only")),
            followed_corrections_only=bool(flags.get("followed_corrections_only")),
        )
        return {**rest, "wrong_turns": choice}

    @model_validator(mode="after")
    def _known_to_export(self) -> ExportSettings:
        value_error_of(self.options, "journey")
        return self

    def options(self, name: str) -> ExportOptions:
        """The `journey export` options of the set `name`.

        Raises:
            ConfigError: a value `journey export` refuses.
        """
        writer_fields = {
            "walk_trials",
            "policy_reasoning",
            "wrong_turns",
        }
        fields = self.model_dump(exclude={"sets", "cumulative", *writer_fields})
        writer = LongThoughtOptions(
            include_reasoning=self.policy_reasoning,
            trials_per_node=self.walk_trials,
            wrong_turns=self.wrong_turns,
        )
        return ExportOptions(format=EXPORT_FORMAT[name], writer=writer, **fields)


class _TrainOptions(Settings):
    """`journey train`'s options shared by SFT and DPO, with the command's defaults."""

    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=8)
    seed: int = 42
    lora: bool = False
    lora_rank: int = Field(default=16, ge=1)

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, value: int) -> int:
        return _checked_steps(value)

    def options(self) -> dict[str, Any]:
        """The `journey train` option values (`lr`, `epochs`...), by option name."""
        shared = set(_TrainOptions.model_fields) | {"lr", "beta"}
        return {k: v for k, v in self.model_dump().items() if k in shared}


def _checked_steps(value: int) -> int:
    if value == 0 or value < -1:
        raise ValueError("must be positive, or -1 to run the epochs")
    return value


class PhaseChoice(Settings):
    """One phase of an arm: the set it trains on, and settings of its own (over the arm's)."""

    set: SetName
    lr: float | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    max_steps: int | None = None
    batch_size: int | None = Field(default=None, ge=1)
    grad_accum: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=8)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"set": value} if isinstance(value, str) else value

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, value: int | None) -> int | None:
        return value if value is None else _checked_steps(value)

    def options(self) -> dict[str, Any]:
        """This phase's own option values (those it sets)."""
        return {k: v for k, v in self.model_dump(exclude={"set"}).items() if v is not None}


class PairsSettings(Settings):
    """How `journey pairs` samples the trained model (its options and defaults)."""

    samples: int = Field(default=20, ge=2)
    pairs_per_problem: int = Field(default=5, ge=1)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    batch_size: int = Field(default=8, ge=1)


class DPOSettings(_TrainOptions):
    """DPO of some arms' SFT models on pairs of their own samples (`journey pairs`)."""

    arms: tuple[str, ...] = Field(min_length=1)
    pairs: PairsSettings = PairsSettings()
    lr: float = Field(default=1e-6, gt=0)  # `journey train dpo --lr`
    beta: float = Field(default=0.1, gt=0)


def _default_arms() -> dict[str, tuple[PhaseChoice, ...]]:
    shortcut, journey = PhaseChoice(set="shortcut"), PhaseChoice(set="journey")
    return {"shortcut": (shortcut,), "journey": (shortcut, journey)}


class TrainingSettings(_TrainOptions):
    """The models each round trains: one per arm, and DPO where asked."""

    lr: float = Field(default=1e-5, gt=0)  # `journey train sft --lr`
    model: str | None = Field(
        default=None,
        description="What the arms start from in round 1 (default: the policy); later "
        "rounds start from the next_policy model, if any.",
    )
    arms: dict[str, tuple[PhaseChoice, ...]] = Field(default_factory=_default_arms)
    dpo: DPOSettings | None = None
    seeds: tuple[int, ...] | None = Field(
        default=None,
        min_length=1,
        description="Train every arm once per seed (its `seed`), each from the same start, "
        "and evaluate each; the report averages over them. None: once, with `seed`.",
    )
    match: MatchMode = Field(
        default="none",
        description="Equalise the arms' data: rows (as many as the smallest arm) or tokens "
        "(rows until the smallest arm's trained-token total), chosen by the seed.",
    )
    tokenizer: Literal["heuristic", "embedded"] = Field(
        default="heuristic",
        description="How the trained tokens are counted: heuristic (words, chars/4) or the "
        "embedded model's tokenizer (the model the arms start from, by default).",
    )

    @field_validator("arms")
    @classmethod
    def _arm_names(
        cls, arms: dict[str, tuple[PhaseChoice, ...]]
    ) -> dict[str, tuple[PhaseChoice, ...]]:
        if not arms:
            raise ValueError("name at least one arm")
        for name, phases in arms.items():
            if not _ARM_NAME.match(name) or name in (BASE, NONE):
                raise ValueError(
                    f"arm name {name!r} must be lowercase letters, digits and _ "
                    f"(and not {BASE!r} or {NONE!r})"
                )
            if not phases:
                raise ValueError(f"arm {name!r} lists no phase")
        return arms

    @field_validator("model")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        return value if value is None else checked_spec(value)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must differ, got {list(seeds)}")
        return seeds

    @model_validator(mode="after")
    def _one_seed_setting(self) -> TrainingSettings:
        if self.seeds is not None:
            seeded = [
                name
                for name, phases in self.arms.items()
                if any(p.seed is not None for p in phases)
            ]
            if seeded:
                raise ValueError(
                    f"arms {seeded} set a phase seed; with seeds, the seed is each run's"
                )
        return self

    @property
    def runs(self) -> tuple[int | None, ...]:
        """The seed of each training of an arm: the seeds, or (None,) for one with `seed`."""
        return self.seeds if self.seeds is not None else (None,)


class EvalSettings(Settings):
    """How every model of a round is evaluated on `eval_dataset` (`journey eval`)."""

    max_new_tokens: int = Field(default=512, ge=1)
    batch_size: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    base: bool = Field(default=True, description="Evaluate each round's starting policy too.")
