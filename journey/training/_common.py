"""What SFT and DPO share: resolving the model, LoRA, timing the run, saving the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from journey.engine.quiet import quiet_loading
from journey.training.config import DPOTrainingConfig, SFTTrainingConfig
from journey.training.local_models import model_directory
from journey.training.summary import SUMMARY_FILE, TrainingSummary, file_digest
from journey.training.trained_on import absolute_spec

TrainingConfig = SFTTrainingConfig | DPOTrainingConfig
Log = Callable[[str], None]


def load_model_and_tokenizer(config: TrainingConfig) -> tuple[Any, Any]:
    """The model (float32, or bf16 where the config chose it) and its tokenizer."""
    directory = model_directory(config.model_spec)
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    with quiet_loading():  # a 0.2 s bar ahead of the training bar is noise
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def lora_config(config: TrainingConfig) -> Any:
    """The peft `LoraConfig` the config asks for, or None for full fine-tuning."""
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def prepare_config(config: TrainingConfig) -> None:
    """Settings TRL leaves to the caller: a loss logged at every step."""
    config.logging_steps = 1


class LossRecorder(TrainerCallback):
    """Keeps the training loss of every logged step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses.append(round(float(logs["loss"]), 4))


def train_and_save(
    kind: str,
    trainer: Any,
    tokenizer: Any,
    config: TrainingConfig,
    recorder: LossRecorder,
    *,
    rows: int,
    log: Log,
) -> TrainingSummary:
    """Train, then save the (merged, if LoRA) model, tokenizer and summary to output_dir."""
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    assert config.output_dir is not None  # `TrainingArguments.__post_init__` defaults it
    out = Path(config.output_dir)
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()  # a plain model directory: any spec loader reads it
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    steps = int(trainer.state.global_step)
    tokens = int(trainer.state.num_input_tokens_seen)
    settings = {
        k: v
        for k, v in config.to_dict().items()  # type: ignore[no-untyped-call]  # in transformers
        if k in _SAVED_SETTINGS or k.startswith("lora")
    }
    summary = TrainingSummary(
        kind=kind,
        model=absolute_spec(config.model_spec),  # found again from any folder
        data=str(Path(config.data_file).resolve()),
        data_sha256=file_digest(Path(config.data_file)),
        out=str(out),
        rows=rows,
        lora=config.lora,
        dtype="bfloat16" if config.bf16 else "float32",
        device="cuda" if torch.cuda.is_available() else "cpu",
        steps=steps,
        loss_head=recorder.losses[:5],
        loss_tail=recorder.losses[-5:],
        tokens_seen=tokens,
        tokens_per_second=round(tokens / wall, 1) if wall else 0.0,
        seconds_per_step=round(wall / steps, 3) if steps else 0.0,
        wall_seconds=round(wall, 2),
        config=settings,
    )
    (out / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    log(f"saved {'merged LoRA' if config.lora else 'fully trained'} model to {out}")
    return summary


_SAVED_SETTINGS = frozenset(
    {
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "beta",
        "seed",
        "bf16",
        "warmup_steps",
        "lr_scheduler_type",
    }
)
