"""`journey train sft` and `journey train dpo`: fine-tune a local model with TRL."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from journey.cli._app import app, console
from journey.cli._options import field_default, field_option
from journey.errors import ConfigError, DatasetError
from journey.training.fields import JourneyTrainingFields
from journey.training.phases import TrainKind, train_phases
from journey.training.recipe import PhaseSpec, TrainPhase, load_train_file, plan_phases

train_app = typer.Typer(
    help="Train a local model (the embedded one by default) with TRL: SFT or DPO.",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

# journey's own fields give their options help and default; TRL's (max steps, epochs, lr...)
# are typed here: `trl` imports torch, and these defaults are journey's, not TRL's.
ModelOption = Annotated[str, field_option(JourneyTrainingFields, "model_spec", "--model")]
MODEL_DEFAULT: str = field_default(JourneyTrainingFields, "model_spec")
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Output directory: a model spec afterwards (hf:DIR)."),
]
LoraOption = Annotated[bool, field_option(JourneyTrainingFields, "lora", "--lora")]
LORA_DEFAULT: bool = field_default(JourneyTrainingFields, "lora")
LoraRankOption = Annotated[int, field_option(JourneyTrainingFields, "lora_rank")]
LORA_RANK_DEFAULT: int = field_default(JourneyTrainingFields, "lora_rank")
MaxStepsOption = Annotated[
    int, typer.Option(help="Stop after this many optimizer steps (-1: run the epochs).")
]
EpochsOption = Annotated[float, typer.Option(help="Passes over the data (unless --max-steps).")]
BatchOption = Annotated[int, typer.Option(help="Rows per device per step.")]
AccumOption = Annotated[int, typer.Option(help="Steps whose gradients add up per update.")]
LengthOption = Annotated[int, typer.Option(help="Longest tokenised row; longer ones are cut.")]
SeedOption = Annotated[int, typer.Option(help="Random seed.")]
NoProgressOption = Annotated[
    bool,
    typer.Option("--no-progress", help="No progress bar: a line per logged step (for log files)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML recipe: option values (flags given here win) and optional 'phases:'. "
        "See recipes/.",
    ),
]


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


def _option_types(command: Callable[..., None]) -> dict[str, type]:
    """The Python type of each option of a train command, read from its annotations."""
    types: dict[str, type] = {}
    for name, hint in typing.get_type_hints(command).items():  # Annotated[...] stripped
        if name in ("ctx", "config", "return"):
            continue
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        types[name] = args[0] if args else hint
    return types


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set this option (command line or environment), not a default."""
    source = ctx.get_parameter_source(name)
    # By name: typer vendors its own copy of click's ParameterSource enum.
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _plan(
    ctx: typer.Context, command: Callable[..., None], config: Path | None, kind: str
) -> tuple[dict[str, Any], list[TrainPhase]]:
    """Merge --config under the flags, and turn --data/--then or `phases:` into phases.

    Both ways of asking for phases end here, so `--then` and a recipe's `phases:` run
    the same code.

    Returns:
        The merged option values and the phases to train, in order.
    """
    values = {name: value for name, value in ctx.params.items() if name != "config"}
    explicit = {name for name in values if _given(ctx, name)}
    specs: list[PhaseSpec] | None = None
    if config is not None:
        recipe = load_train_file(config, _option_types(command))
        values.update({k: v for k, v in recipe.settings.items() if k not in explicit})
        if recipe.phases is not None:
            given = sorted(explicit & {"data", "then"})
            if given:
                flags = " and ".join(f"--{name}" for name in given)
                raise ConfigError(f"{config}: 'phases' cannot be combined with {flags}")
            specs = [
                PhaseSpec(spec.data, {k: v for k, v in spec.settings.items() if k not in explicit})
                for spec in recipe.phases
            ]
    if values["out"] is None or (specs is None and values["data"] is None):
        raise ConfigError(
            f"journey train {kind} needs --data FILE and --out DIR (or a --config file "
            "that sets them)"
        )
    if specs is None:
        specs = [PhaseSpec(values["data"], {})]
        if values.get("then") is not None:  # the seed's recipe: phase 2 from phase 1
            specs.append(PhaseSpec(values["then"], {}))
    phases = plan_phases(values["model"], values["out"], specs)
    for phase in phases:  # fail before phase 1, not after it
        if not phase.data.is_file():
            raise DatasetError(f"{kind.upper()} data file {str(phase.data)!r} does not exist")
    return values, phases


def _train(kind: TrainKind, phases: list[TrainPhase], values: dict[str, Any]) -> None:
    """Train the phases in order, each announced (when several) and summed up."""

    def announce(number: int, phase: TrainPhase) -> None:
        if len(phases) > 1:
            console.print(
                f"phase {number}/{len(phases)}: {phase.data} from {phase.model} into {phase.out}",
                highlight=False,
            )

    train_phases(
        kind,
        phases,
        values,
        log=console.print,
        on_phase=announce,
        on_summary=_print_summary,
        progress=not values.get("no_progress", False),
    )


@train_app.command(
    epilog="Examples:\n\n"
    "    journey train sft --data runs/m500/journey.jsonl --out models/journey\n\n"
    "    journey train sft --data sft.jsonl --out models/lora --lora --max-steps 50\n\n"
    "    journey train sft --config recipes/seed-sft.yaml --max-steps 2\n\n"
    "    accelerate launch -m journey train sft --model hf:deepseek-math-7b --data sft.jsonl "
    "--out models/ds7b"
)
def sft(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="JSONL of {messages} or {prompt, completion} rows."),
    ] = None,
    out: OutOption = None,
    model: ModelOption = MODEL_DEFAULT,
    then: Annotated[
        Path | None,
        typer.Option(
            "--then",
            help="Two-phase recipe: after --data (saved to OUT/phase1), train on this file "
            "from the phase-1 model, with the same settings, into OUT.",
        ),
    ] = None,
    lora: LoraOption = LORA_DEFAULT,
    lora_rank: LoraRankOption = LORA_RANK_DEFAULT,
    max_steps: MaxStepsOption = -1,
    epochs: EpochsOption = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-5,
    batch_size: BatchOption = 4,
    grad_accum: AccumOption = 1,
    max_length: LengthOption = 1024,
    seed: SeedOption = 42,
    config: ConfigOption = None,
    no_progress: NoProgressOption = False,
) -> None:
    """Supervised fine-tuning; the loss falls on the (last) assistant reply of each row."""
    values, phases = _plan(ctx, sft, config, "sft")
    _train("sft", phases, values)


@train_app.command(
    epilog="Examples:\n\n    journey train dpo --model hf:models/journey --data pairs.jsonl "
    "--out models/journey-dpo --beta 0.1\n\n"
    "    journey train dpo --config recipes/seed-dpo.yaml"
)
def dpo(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="JSONL of {prompt, chosen, rejected} rows."),
    ] = None,
    out: OutOption = None,
    model: ModelOption = MODEL_DEFAULT,
    lora: LoraOption = LORA_DEFAULT,
    lora_rank: LoraRankOption = LORA_RANK_DEFAULT,
    beta: Annotated[float, typer.Option(help="How far from the reference model DPO may go.")] = 0.1,
    max_steps: MaxStepsOption = -1,
    epochs: EpochsOption = 1.0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-6,
    batch_size: BatchOption = 4,
    grad_accum: AccumOption = 1,
    max_length: LengthOption = 1024,
    seed: SeedOption = 42,
    config: ConfigOption = None,
    no_progress: NoProgressOption = False,
) -> None:
    """Direct preference optimisation on chosen/rejected pairs (float32 on CPU)."""
    values, phases = _plan(ctx, dpo, config, "dpo")
    _train("dpo", phases, values)
