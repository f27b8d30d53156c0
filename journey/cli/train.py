"""`journey train sft` and `journey train dpo`: fine-tune a local model with TRL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console
from journey.errors import DatasetError

train_app = typer.Typer(
    help="Train a local model (the embedded one by default) with TRL: SFT or DPO.",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

ModelOption = Annotated[
    str, typer.Option("--model", help="Model to start from: embedded, hf:DIR or a directory.")
]
OutOption = Annotated[
    Path, typer.Option("--out", help="Output directory: a model spec afterwards (hf:DIR).")
]
LoraOption = Annotated[
    bool, typer.Option("--lora", help="Train LoRA adapters, saved merged into the model.")
]
LoraRankOption = Annotated[int, typer.Option(help="LoRA rank.")]
MaxStepsOption = Annotated[
    int, typer.Option(help="Stop after this many optimizer steps (-1: run the epochs).")
]
EpochsOption = Annotated[float, typer.Option(help="Passes over the data (unless --max-steps).")]
BatchOption = Annotated[int, typer.Option(help="Rows per device per step.")]
AccumOption = Annotated[int, typer.Option(help="Steps whose gradients add up per update.")]
LengthOption = Annotated[int, typer.Option(help="Longest tokenised row; longer ones are cut.")]
SeedOption = Annotated[int, typer.Option(help="Random seed.")]


def _print_summary(summary: object) -> None:
    from rich.table import Table

    from journey.training import TrainingSummary

    assert isinstance(summary, TrainingSummary)
    table = Table(title=f"{summary.kind} training", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for name, value in (
        ("model", f"{summary.model} ({summary.dtype}, {summary.device})"),
        ("data", f"{summary.data} ({summary.rows} rows)"),
        ("method", "LoRA (merged)" if summary.lora else "full fine-tuning"),
        ("steps", str(summary.steps)),
        ("loss, first steps", " ".join(f"{x:.3f}" for x in summary.loss_head)),
        ("tokens/s", f"{summary.tokens_per_second:.0f} ({summary.tokens_seen} tokens)"),
        ("time", f"{summary.wall_seconds:.1f} s ({summary.seconds_per_step:.2f} s/step)"),
        ("saved to", f"{summary.out}  (use it as --model hf:{summary.out})"),
    ):
        table.add_row(name, value)
    if summary.steps > len(summary.loss_head):  # else the head already shows every loss
        table.add_row("loss, last steps", " ".join(f"{x:.3f}" for x in summary.loss_tail))
    console.print(table)


@train_app.command(
    epilog="Examples:\n\n"
    "    journey train sft --data runs/m500/journey.jsonl --out models/journey\n\n"
    "    journey train sft --data sft.jsonl --out models/lora --lora --max-steps 50\n\n"
    "    accelerate launch -m journey train sft --model hf:deepseek-math-7b --data sft.jsonl "
    "--out models/ds7b"
)
def sft(
    data: Annotated[
        Path, typer.Option("--data", help="JSONL of {messages} or {prompt, completion} rows.")
    ],
    out: OutOption,
    model: ModelOption = "embedded",
    then: Annotated[
        Path | None,
        typer.Option(
            "--then",
            help="Two-phase recipe: after --data (saved to OUT/phase1), train on this file "
            "from the phase-1 model, with the same settings, into OUT.",
        ),
    ] = None,
    lora: LoraOption = False,
    lora_rank: LoraRankOption = 16,
    max_steps: MaxStepsOption = -1,
    epochs: EpochsOption = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-5,
    batch_size: BatchOption = 4,
    grad_accum: AccumOption = 1,
    max_length: LengthOption = 1024,
    seed: SeedOption = 42,
) -> None:
    """Supervised fine-tuning; the loss falls on the (last) assistant reply of each row."""
    from journey.training import SFTTrainingConfig, train_sft

    settings = {
        "lora": lora,
        "lora_rank": lora_rank,
        "lora_alpha": 2 * lora_rank,  # the usual alpha = 2r keeps the update scale steady
        "max_steps": max_steps,
        "num_train_epochs": epochs,
        "learning_rate": lr,
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum,
        "max_length": max_length,
        "seed": seed,
    }
    phases = [(model, data, out)]
    if then is not None:  # the seed's recipe: phase 2 starts from the phase-1 model
        if not then.is_file():  # fail before phase 1, not after it
            raise DatasetError(f"SFT data file {str(then)!r} does not exist")
        phases = [(model, data, out / "phase1"), (f"hf:{out / 'phase1'}", then, out)]
    for phase_model, phase_data, phase_out in phases:
        config = SFTTrainingConfig(
            output_dir=str(phase_out),
            model_spec=phase_model,
            data_file=str(phase_data),
            **settings,  # type: ignore[arg-type]
        )
        _print_summary(train_sft(config, log=console.print))


@train_app.command(
    epilog="Example:\n\n    journey train dpo --model hf:models/journey --data pairs.jsonl "
    "--out models/journey-dpo --beta 0.1"
)
def dpo(
    data: Annotated[Path, typer.Option("--data", help="JSONL of {prompt, chosen, rejected} rows.")],
    out: OutOption,
    model: ModelOption = "embedded",
    lora: LoraOption = False,
    lora_rank: LoraRankOption = 16,
    beta: Annotated[float, typer.Option(help="How far from the reference model DPO may go.")] = 0.1,
    max_steps: MaxStepsOption = -1,
    epochs: EpochsOption = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-6,
    batch_size: BatchOption = 4,
    grad_accum: AccumOption = 1,
    max_length: LengthOption = 1024,
    seed: SeedOption = 42,
) -> None:
    """Direct preference optimisation on chosen/rejected pairs (float32 on CPU)."""
    from journey.training import DPOTrainingConfig, train_dpo

    config = DPOTrainingConfig(
        output_dir=str(out),
        model_spec=model,
        data_file=str(data),
        lora=lora,
        lora_rank=lora_rank,
        lora_alpha=2 * lora_rank,
        beta=beta,
        max_steps=max_steps,
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        max_length=max_length,
        seed=seed,
    )
    _print_summary(train_dpo(config, log=console.print))
