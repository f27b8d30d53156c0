"""Supervised fine-tuning on conversational rows with TRL's `SFTTrainer`."""

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
from journey.training.config import SFTTrainingConfig
from journey.training.data import load_sft_rows
from journey.training.summary import TrainingSummary

__all__ = ["train_sft"]

logger = logging.getLogger(__name__)


def train_sft(config: SFTTrainingConfig, *, log: Log | None = None) -> TrainingSummary:
    """Fine-tune `config.model_spec` on `config.data_file`; save into `config.output_dir`.

    Every row is prompt/completion (see `journey.training.data`), so the loss falls
    on the completion only.

    Raises:
        DatasetError: the data file is missing, empty or has a bad line.
        ConfigError: the model spec cannot be trained.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    say = log or logger.info
    rows = load_sft_rows(config.data_file)
    prepare_config(config)
    config.completion_only_loss = True
    model, tokenizer = load_model_and_tokenizer(config)
    recorder = LossRecorder()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[recorder],
    )
    say(f"SFT on {len(rows)} rows of {config.data_file} from {config.model_spec}")
    return train_and_save("sft", trainer, tokenizer, config, recorder, rows=len(rows), log=say)
