"""Train a recipe's phases one after the other: what `journey train sft|dpo` does, and
`journey iterate` with it.

torch and TRL are imported when the first phase starts, not with this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from journey.training.recipe import TrainPhase, config_settings
from journey.training.summary import TrainingSummary

__all__ = ["TrainKind", "train_phases"]

TrainKind = Literal["sft", "dpo"]
Log = Callable[[str], None]


@contextmanager
def _dataset_bars(shown: bool) -> Iterator[None]:
    """`datasets` draws a bar for each pass TRL makes over the rows (tokenizing,
    labelling, truncating): off with the trainer's own, then as they were."""
    from datasets.utils import logging as datasets_logging

    was = datasets_logging.is_progress_bar_enabled()
    if not shown:
        datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not shown:
            datasets_logging.enable_progress_bar()


def train_phases(
    kind: TrainKind,
    phases: Sequence[TrainPhase],
    values: Mapping[str, Any],
    *,
    log: Log | None = None,
    on_phase: Callable[[int, TrainPhase], None] | None = None,
    on_summary: Callable[[TrainingSummary], None] | None = None,
    progress: bool = True,
) -> list[TrainingSummary]:
    """Train each phase from the model the one before saved (`plan_phases`).

    Args:
        kind: sft or dpo.
        phases: The phases, in order.
        values: `journey train` option values (`lr`, `epochs`...); a phase's own
            settings win over them.
        log: Where the trainers say what they do.
        on_phase: Told of each phase (its number from 1) before it trains.
        on_summary: Told of each phase's summary once its model is saved.
        progress: Show the trainer's progress bar; without it the trainer prints a
            line per logged step, which a log file keeps readable.

    Raises:
        DatasetError: a data file is missing, empty or has a bad line.
        ConfigError: a setting is refused, or the model cannot be trained.
    """
    from journey.training.config import DPOTrainingConfig, SFTTrainingConfig
    from journey.training.dpo import train_dpo
    from journey.training.sft import train_sft

    summaries = []
    for number, phase in enumerate(phases, 1):
        if on_phase is not None:
            on_phase(number, phase)
        where: dict[str, Any] = {
            "output_dir": str(phase.out),
            "model_spec": phase.model,
            "data_file": str(phase.data),
            "disable_tqdm": not progress,
        }
        settings = config_settings({**values, **phase.settings})
        with _dataset_bars(progress):
            if kind == "sft":
                summary = train_sft(SFTTrainingConfig(**where, **settings), log=log)
            else:
                summary = train_dpo(DPOTrainingConfig(**where, **settings), log=log)
        if on_summary is not None:
            on_summary(summary)
        summaries.append(summary)
    return summaries
