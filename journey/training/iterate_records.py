"""What a round of `journey iterate` reads and leaves: its problems, hooks and records.

`RoundRunner` (`iterate_round`) fills a `RoundRecord` step by step; the report
(`iterate_report`) reads the round back from it. A model's name says its arm, whether
DPO followed, and its seed: `journey`, `journey-dpo`, `journey-seed2`,
`journey-dpo-seed2` (`model_name`); arm names hold no `-`, so no two collide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from journey.errors import ConfigError
from journey.problems.dataset import ProblemRecord, issue_lines, load_problems
from journey.problems.ids import problem_key
from journey.runs.jobs import JobProgress, NoProgress
from journey.training.iterate_settings import DatasetChoice
from journey.training.iterate_steps import ModelRef
from journey.training.iterate_train import Log
from journey.training.phases import TrainKind

__all__ = [
    "IterateHooks",
    "LoadedProblems",
    "RoundProblems",
    "RoundRecord",
    "TrainedModel",
    "load_choice",
    "model_name",
]


def model_name(arm: str, seed: int | None, *, dpo: bool = False) -> str:
    """A model's name in its round: `ARM`, then `-dpo` after DPO, then `-seedS` with seeds."""
    return arm + ("-dpo" if dpo else "") + ("" if seed is None else f"-seed{seed}")


def _quiet(_: str) -> None:
    """Logs nothing."""


@dataclass(frozen=True)
class IterateHooks:
    """Where an iteration reports: a line per step, and each long job's progress."""

    log: Log = field(default=_quiet, metadata={"help": "Told one line per step."})
    synthesis: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each synthesis."}
    )
    evaluation: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each evaluation."}
    )
    pairs: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each pairs sampling."}
    )
    training_progress: bool = field(
        default=True, metadata={"help": "Whether trainers show their progress bars."}
    )


@dataclass(frozen=True)
class LoadedProblems:
    """A dataset choice's problems, and how its runs record where they came from."""

    records: list[ProblemRecord]
    source: dict[str, Any]
    """The `dataset` section of a synthesis run's `run.json`."""
    name: str
    """The dataset as evaluation and pairs cards name it."""
    issues: int


def load_choice(choice: DatasetChoice, log: Log) -> LoadedProblems:
    """Read (or generate) the problems of `choice`, logging the lines skipped.

    Raises:
        ConfigError: the selection holds no problem, or is malformed.
        DatasetError: the dataset cannot be read.
    """
    data = load_problems(
        choice.source,
        problem_field=choice.problem_field,
        answer_field=choice.answer_field,
        split=choice.split,
    )
    for line in issue_lines(data.issues):
        log(f"skipped {line}")
    records = data.select(offset=choice.offset, limit=choice.limit)
    if not records:
        raise ConfigError(f"no problems selected from {choice.source!r}")
    source = {
        **(data.source.record() if data.source else {"path": choice.source}),
        "problem_field": choice.problem_field,
        "answer_field": choice.answer_field,
        "offset": choice.offset,
        "limit": choice.limit,
        "shard": None,
        "problems": len(records),
    }
    return LoadedProblems(records, source, str(data.source or choice.source), len(data.issues))


@dataclass(frozen=True)
class TrainedModel:
    """A model a round trained."""

    name: str
    kind: TrainKind
    ref: ModelRef
    out: Path
    start: str
    """The spec its first phase started from."""
    data: tuple[str, ...]
    """What each phase trained on: a set name, or `pairs`."""
    arm: str
    seed: int | None = None
    """The training seed of one of `training.seeds`; None without seeds."""
    rows: int | None = None
    """Rows of the data it trained on, every phase together (None: not recorded)."""
    tokens: int | None = None
    """Tokens of those rows that the loss is computed on (`iterate_match`)."""
    seconds: float | None = None
    """Wall time of its training (None: trained before this was recorded)."""


@dataclass
class RoundRecord:
    """Where one round's steps left their results."""

    number: int
    root: Path
    policy: ModelRef
    critic: ModelRef
    roles: tuple[str, ...]
    """The roles its strategy asks (no critic for propose-critique)."""
    synth: Path
    sets: dict[str, Path] = field(default_factory=dict)
    pairs: dict[str, Path] = field(default_factory=dict)
    models: dict[str, TrainedModel] = field(default_factory=dict)
    evals: dict[str, Path] = field(default_factory=dict)
    """By model name (`base`, an arm, ARM-dpo): its evaluation folder."""
    notes: list[str] = field(default_factory=list)
    seeds: tuple[int | None, ...] = (None,)
    """The training seeds; (None,) for one training per arm."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each step that recorded it, by step (`synth`, `train NAME`, `eval NAME`)."""

    def final(self, arm: str) -> TrainedModel:
        """The arm's last model of the first seed: after DPO where DPO ran, else its SFT model."""
        own = [m for m in self.models.values() if m.arm == arm and m.seed == self.seeds[0]]
        return next((m for m in own if m.kind == "dpo"), own[0])


class RoundProblems:
    """The problems of one round, read only when a step needs them.

    With `held_out`, a problem whose text is also one of those is left out, so a model
    is never evaluated on a problem it was trained on (a small task space, such as
    one-digit products, draws the same problem under different seeds).
    """

    def __init__(
        self, choice: DatasetChoice, log: Log, *, held_out: RoundProblems | None = None
    ) -> None:
        self.choice = choice
        self._log = log
        self._held_out = held_out

    @cached_property
    def problems(self) -> LoadedProblems:
        """The selected problems (without the held-out ones, if asked).

        Raises:
            ConfigError: no problem is left.
        """
        loaded = load_choice(self.choice, self._log)
        if self._held_out is None:
            return loaded
        seen = {problem_key(r.problem) for r in self._held_out.problems.records}
        kept = [r for r in loaded.records if problem_key(r.problem) not in seen]
        dropped = len(loaded.records) - len(kept)
        if not kept:
            raise ConfigError(f"every problem of {self.choice.source!r} is a held-out problem")
        if dropped:
            self._log(f"left out {dropped} of {len(loaded.records)} problems: held out")
        source = {**loaded.source, "problems": len(kept), "held_out_left_out": dropped}
        return replace(loaded, records=kept, source=source)
