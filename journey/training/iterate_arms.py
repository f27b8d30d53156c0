"""The models a round of `journey iterate` trains: every arm once per seed, and DPO.

With `training.seeds`, each arm is trained once per seed, every time from the same
start, with the seed as the training seed, so the spread between seeds shows how much
of a gap between arms is luck. Each seed's trainings read data matched for that seed
(`iterate_match`): with `training.match`, the arms get equal rows or tokens. The
`ArmTraining` of each model says what it trains on; `iterate_round` runs it as a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from journey.errors import DatasetError
from journey.exports.token_counts import TokenCounter
from journey.training.iterate_match import ArmData, match_arms
from journey.training.iterate_records import model_name
from journey.training.iterate_settings import DPOSettings, SetName, TrainingSettings
from journey.training.iterate_steps import ModelRef
from journey.training.phases import TrainKind
from journey.training.recipe import PhaseSpec

__all__ = ["ArmTraining", "dpo_training", "matched_data", "sft_trainings"]


@dataclass(frozen=True)
class ArmTraining:
    """One model to train: its name, arm and seed, where it starts, and on what."""

    name: str
    arm: str
    seed: int | None
    kind: TrainKind
    start: ModelRef
    specs: list[PhaseSpec]
    sets: tuple[str, ...]
    """What each phase trains on: a set name, or `pairs`."""
    values: dict[str, Any]
    data: ArmData | None = None
    """The rows and tokens of an SFT model's data (None for DPO)."""

    def counts(self) -> dict[str, Any]:
        """What its training marker records of the data: rows and tokens, per phase too."""
        if self.data is None:
            return {}
        return {
            "rows": self.data.rows,
            "tokens": self.data.tokens,
            "phase_rows": [phase.rows for phase in self.data.phases],
            "phase_tokens": [phase.tokens for phase in self.data.phases],
        }


def _seeded(values: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """Training option values with one of `training.seeds` as the seed."""
    return values if seed is None else {**values, "seed": seed}


def matched_data(
    training: TrainingSettings,
    sets: Mapping[str, Path],
    *,
    seed: int | None,
    count: TokenCounter,
    folder: Path,
    round_number: int,
) -> dict[str, ArmData]:
    """Each arm's phase files for one seed's trainings, matched as `training.match` asks.

    Args:
        training: The recipe's training section.
        sets: Each exported set's file.
        seed: One of `training.seeds`, or None (then `training.seed` chooses the rows).
        count: Counts the tokens of a text.
        folder: Where matched files go (`folder/seed-S/ARM/...`).
        round_number: For messages.

    Raises:
        DatasetError: matching leaves a phase with no row.
    """
    files = {arm: [sets[p.set] for p in phases] for arm, phases in training.arms.items()}
    data = match_arms(
        files,
        mode=training.match,
        seed=training.seed if seed is None else seed,
        count=count,
        out=folder if seed is None else folder / f"seed-{seed}",
    )
    for arm, arm_data in data.items():
        for phase, choice in zip(arm_data.phases, training.arms[arm], strict=True):
            if phase.rows == 0:
                raise DatasetError(
                    f"round {round_number}: arm {arm!r} keeps no {choice.set} row when matched "
                    f"by {training.match}; give its phases more rows, or match none"
                )
    return data


def sft_trainings(
    training: TrainingSettings,
    data: Mapping[int | None, Mapping[str, ArmData]],
    start: ModelRef,
) -> list[ArmTraining]:
    """The SFT model of every arm and seed, arm by arm, each from `start`."""
    trainings = []
    for arm, phases in training.arms.items():
        sets: tuple[SetName, ...] = tuple(p.set for p in phases)
        for seed in training.runs:
            arm_data = data[seed][arm]
            trainings.append(
                ArmTraining(
                    name=model_name(arm, seed),
                    arm=arm,
                    seed=seed,
                    kind="sft",
                    start=start,
                    specs=[
                        PhaseSpec(phase.file, choice.options())
                        for phase, choice in zip(arm_data.phases, phases, strict=True)
                    ],
                    sets=sets,
                    values=_seeded(training.options(), seed),
                    data=arm_data,
                )
            )
    return trainings


def dpo_training(
    dpo: DPOSettings, arm: str, seed: int | None, start: ModelRef, pairs: Path
) -> ArmTraining:
    """DPO of an arm's SFT model (`start`) on pairs of its own samples."""
    return ArmTraining(
        name=model_name(arm, seed, dpo=True),
        arm=arm,
        seed=seed,
        kind="dpo",
        start=start,
        specs=[PhaseSpec(pairs, {})],
        sets=("pairs",),
        values=_seeded(dpo.options(), seed),
    )
