"""Training: SFT and DPO of local models on journey's exported data, with TRL.

The data readers need nothing beyond the core install; everything else imports torch,
TRL and peft (the `train` extra), so it is imported on first use, not with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from journey.training.data import load_dpo_rows, load_sft_rows
from journey.training.phases import train_phases
from journey.training.summary import TrainingSummary

if TYPE_CHECKING:
    from journey.training.config import DPOTrainingConfig, SFTTrainingConfig, gpu_supports_bf16
    from journey.training.dpo import train_dpo
    from journey.training.local_models import check_trainable, model_directory
    from journey.training.sft import train_sft

__all__ = [
    "DPOTrainingConfig",
    "SFTTrainingConfig",
    "TrainingSummary",
    "check_trainable",
    "gpu_supports_bf16",
    "load_dpo_rows",
    "load_sft_rows",
    "model_directory",
    "train_dpo",
    "train_phases",
    "train_sft",
]

_LAZY = {
    "DPOTrainingConfig": "config",
    "SFTTrainingConfig": "config",
    "gpu_supports_bf16": "config",
    "check_trainable": "local_models",
    "model_directory": "local_models",
    "train_dpo": "dpo",
    "train_sft": "sft",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
