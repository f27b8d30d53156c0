"""Direct preference optimisation on conversational pairs with TRL's `DPOTrainer`."""

from __future__ import annotations

import logging

from journey.training._common import (
    Log,
    LossRecorder,
    load_model_and_tokenizer,
    lora_config,
    prepare_config,
    train_and_save,
)
from journey.training.config import DPOTrainingConfig
from journey.training.data import load_dpo_rows
from journey.training.summary import TrainingSummary

__all__ = ["train_dpo"]

logger = logging.getLogger(__name__)


def train_dpo(config: DPOTrainingConfig, *, log: Log | None = None) -> TrainingSummary:
    """DPO-train `config.model_spec` on the pairs of `config.data_file`.

    The reference model is a frozen copy of the starting model (with LoRA, the base
    weights with the adapters switched off, so no second copy is held).

    Raises:
        DatasetError: the data file is missing, empty or has a bad line.
        ConfigError: the model spec cannot be trained.
    """
    from datasets import Dataset
    from trl import DPOTrainer

    say = log or logger.info
    rows = load_dpo_rows(config.data_file)
    prepare_config(config)
    model, tokenizer = load_model_and_tokenizer(config)
    recorder = LossRecorder()
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[recorder],
    )
    say(f"DPO on {len(rows)} pairs of {config.data_file} from {config.model_spec}")
    return train_and_save("dpo", trainer, tokenizer, config, recorder, rows=len(rows), log=say)
