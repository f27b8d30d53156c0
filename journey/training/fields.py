"""The settings journey adds to TRL's training configs: model spec, data file, LoRA.

A module of its own, free of torch and TRL, so that the command line can take these
fields' help and defaults (`journey train --help`) without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from journey.errors import ConfigError

__all__ = ["JourneyTrainingFields"]


@dataclass
class JourneyTrainingFields:
    """The settings journey adds to TRL's configs."""

    model_spec: str = field(
        default="embedded",
        metadata={
            "help": "Model to start from: embedded, hf:DIR or a directory (a trained output)."
        },
    )
    data_file: str = field(default="", metadata={"help": "JSONL training data."})
    lora: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters (merged into the saved model), not all weights."},
    )
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on LoRA inputs."})

    def _check_journey_fields(self) -> None:
        if not self.data_file:
            raise ConfigError("a training data file is needed (--data FILE)")
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be at least 1, got {self.lora_rank!r}")
        if self.lora_alpha < 1:
            raise ConfigError(f"lora_alpha must be at least 1, got {self.lora_alpha!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
