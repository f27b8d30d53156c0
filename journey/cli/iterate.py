"""`journey iterate`: rounds of synth, export, train and eval from a YAML recipe; resumable."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from journey.cli._app import app, console, err_console, resumable


@app.command(
    epilog="Examples:\n\n"
    "    journey iterate examples/iterate-tiny.yaml --out iterations/tiny\n\n"
    "    journey iterate examples/iterate-tiny.yaml --out iterations/tiny   (again: resumes)\n\n"
    "    journey iterate RECIPE.yaml --out iterations/x --rounds 3          (one more round)\n\n"
    "    journey iterate examples/experiment-arith.yaml --out iterations/arith   (issue 18)\n\n"
    "    journey stats iterations/tiny/round-*/synth                       (rounds side by side)"
)
def iterate(
    recipe: Annotated[Path, typer.Argument(help="YAML recipe (see docs/training.md).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Iteration folder (default: iterations/RECIPE); an existing one resumes."
        ),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Rounds to run (default: the recipe's 'rounds').")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(help="Go on with a recipe that differs from the folder's; redo what changed."),
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
) -> None:
    """Synthesise with the policy, export shortcut and journey sets, train a model on each,
    evaluate them on held-out problems, and start the next round from the trained model."""
    from journey.training.iterate import IterateHooks, run_iteration
    from journey.training.iterate_recipe import load_recipe
    from journey.view.iterate_report import render_arms, render_iterate_report
    from journey.view.progress import evaluation_progress, pairs_progress, synthesis_progress

    plan = load_recipe(recipe)
    folder = out if out is not None else Path("iterations") / recipe.stem
    shown = not no_progress
    hooks = IterateHooks(
        log=lambda line: err_console.print(Text(line, style="dim"), soft_wrap=True),
        synthesis=lambda: synthesis_progress(err_console, enabled=shown),
        evaluation=lambda: evaluation_progress(err_console, enabled=shown),
        pairs=lambda: pairs_progress(err_console, enabled=shown),
        training_progress=shown,
    )
    # stdout is the report's: what trainers print there (TRL's loss lines) goes to stderr.
    with resumable(folder), contextlib.redirect_stdout(sys.stderr):
        report = run_iteration(plan, folder, rounds=rounds, force=force, hooks=hooks)
    if json_output:
        print(report.model_dump_json(indent=2))
        return
    console.print(render_iterate_report(report))
    console.print(render_arms(report))
    console.print(f"report in {folder / 'report.json'}", highlight=False, soft_wrap=True)
