"""How `journey iterate` trains a model: a `TrainJob`, handed to a `Trainer`.

The default trainer, `train_with_trl`, runs the job's phases exactly as
`journey train sft|dpo` does (`train_phases`) and returns `hf:OUT`. Any callable
with the same signature can stand in for it (`run_iteration(trainer=...)`): one that
copies a model, trains elsewhere, or, in tests, only records the job. It must write
the model into `job.out` and return the spec by which later steps load it; the
iteration writes the step's marker afterwards, so a trainer that fails or is killed
leaves the step to be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from journey.training.phases import TrainKind, train_phases
from journey.training.recipe import TrainPhase

__all__ = ["Log", "TrainJob", "Trainer", "train_with_trl"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainJob:
    """One model of a round to train: its phases, settings and output folder."""

    name: str = field(metadata={"help": "The model's name in the round: an arm, or ARM-dpo."})
    kind: TrainKind = field(metadata={"help": "sft or dpo."})
    out: Path = field(metadata={"help": "Where the trained model goes (the last phase's out)."})
    phases: tuple[TrainPhase, ...] = field(
        metadata={"help": "The phases in order; each starts from the one before's model."}
    )
    values: Mapping[str, Any] = field(
        metadata={"help": "`journey train` option values (lr, epochs...) for every phase."}
    )
    progress: bool = field(
        default=True, metadata={"help": "Show the trainer's progress bar (not an input)."}
    )

    @property
    def start(self) -> str:
        """The model spec the first phase starts from."""
        return self.phases[0].model


class Trainer(Protocol):
    """Trains a job into `job.out` and returns the trained model's spec."""

    def __call__(self, job: TrainJob, log: Log) -> str: ...


def train_with_trl(job: TrainJob, log: Log) -> str:
    """Train with TRL, as `journey train` does; the model is then `hf:OUT`.

    Raises:
        DatasetError: a data file is empty or has a bad line.
        ConfigError: a setting is refused, or the start model cannot be trained.
    """
    train_phases(job.kind, job.phases, job.values, log=log, progress=job.progress)
    return f"hf:{job.out}"
