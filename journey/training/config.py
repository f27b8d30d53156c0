"""Training configs: TRL's `SFTConfig` / `DPOConfig` plus what journey adds.

journey adds the model spec, the data file and the LoRA settings
(`journey.training.fields`, which the command line reads without torch), validated in
`__post_init__` with messages that quote the bad value, and picks the precision
itself: bf16 on a GPU that supports it, float32 otherwise. TRL's own default
(`bf16=None` becomes True even on CPU) is not used, because bf16 on CPU visibly
distorts DPO's log-probabilities and gives no speed-up on CPUs without native bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import DPOConfig, SFTConfig

from journey.errors import ConfigError
from journey.training.fields import JourneyTrainingFields

__all__ = ["DPOTrainingConfig", "SFTTrainingConfig", "gpu_supports_bf16"]


def gpu_supports_bf16() -> bool:
    """True when a CUDA GPU is present and computes in bf16 natively."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@dataclass
class _JourneyFields(JourneyTrainingFields):
    """journey's fields, and the checks of TRL's fields that need torch."""

    def _check_common(self, config: SFTConfig | DPOConfig) -> None:
        if config.learning_rate <= 0:
            raise ConfigError(f"learning rate must be positive, got {config.learning_rate!r}")
        if config.per_device_train_batch_size < 1:
            raise ConfigError(
                f"batch size must be at least 1, got {config.per_device_train_batch_size!r}"
            )
        if config.gradient_accumulation_steps < 1:
            raise ConfigError(
                "gradient accumulation must be at least 1, "
                f"got {config.gradient_accumulation_steps!r}"
            )
        if config.max_steps == 0 or config.max_steps < -1:
            raise ConfigError(f"max_steps must be positive (or -1), got {config.max_steps!r}")
        if config.num_train_epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {config.num_train_epochs!r}")
        if config.max_length is not None and config.max_length < 8:
            raise ConfigError(f"max_length must be at least 8, got {config.max_length!r}")
        # Precision: bf16 only where it is native; never TRL's "bf16 on CPU" default.
        if config.bf16 is None:
            config.bf16 = gpu_supports_bf16()
        elif config.bf16 and not torch.cuda.is_available():
            raise ConfigError("bf16 needs a GPU here; on CPU training runs in float32")
        # Activation checkpointing only on GPU, where memory is short; on CPU it made LoRA
        # steps several times slower. Set under its new name (before TrainingArguments'
        # __post_init__), which TRL's `gradient_checkpointing` default then mirrors
        # instead of warning that the old name is deprecated.
        if not torch.cuda.is_available():
            config.activation_checkpointing = False
        elif config.activation_checkpointing is None:
            config.activation_checkpointing = config.gradient_checkpointing
        # Checkpoints and reports are journey's business: one final save, no trackers.
        config.save_strategy = "no"
        config.report_to = []
        config.include_num_input_tokens_seen = "non_padding"


@dataclass
class SFTTrainingConfig(SFTConfig, _JourneyFields):
    """TRL's `SFTConfig` plus journey's model spec, data file and LoRA settings."""

    def __post_init__(self) -> None:
        self._check_journey_fields()
        self._check_common(self)
        super().__post_init__()  # type: ignore[no-untyped-call]  # unannotated in TRL


@dataclass
class DPOTrainingConfig(DPOConfig, _JourneyFields):
    """TRL's `DPOConfig` plus journey's model spec, data file and LoRA settings."""

    def __post_init__(self) -> None:
        self._check_journey_fields()
        if self.beta <= 0:
            raise ConfigError(f"beta must be positive, got {self.beta!r}")
        self._check_common(self)
        super().__post_init__()  # type: ignore[no-untyped-call]  # unannotated in TRL
