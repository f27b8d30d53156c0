"""`journey label`: process labels from rollouts for a finished run (Math-Shepherd)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console, err_console, resumable, warn


@app.command(
    epilog="Examples:\n\n"
    "    journey label runs/math500 --rollouts 8 --model embedded\n\n"
    "    journey label runs/math500 --rollouts 16 --model vllm:Qwen/Qwen2.5-7B-Instruct "
    "--concurrency 32\n\n"
    "    journey label runs/math500 --rollouts 8 --model embedded   (again: labels only what "
    "is left)\n\n"
    "    journey export runs/math500 --format prm --out prm.jsonl     (rows carry the estimates)"
)
def label(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    rollouts: Annotated[
        int,
        typer.Option("--rollouts", min=1, help="Completions from each step (Math-Shepherd's N)."),
    ] = 8,
    model: Annotated[
        str,
        typer.Option(
            "--model", help="Model spec that completes the solutions (see 'journey models')."
        ),
    ] = "embedded",
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature of the completions.")
    ] = 0.7,
    tokens: Annotated[
        int, typer.Option(min=1, help="Generation limit of one completion, in tokens.")
    ] = 512,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Steps rolled out at once (each asks N completions).")
    ] = 4,
    force: Annotated[
        bool,
        typer.Option(
            help="Label again with another model or settings than the run's earlier labels "
            "(recorded in RUN/labels/label.json; the old labels are set aside)."
        ),
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the counts as JSON instead of a table.")
    ] = False,
) -> None:
    """Estimate each step of a run by finishing the solution from it N times.

    A step's estimate is the share of completions whose final answer the verifier
    accepts (Math-Shepherd's soft label; any at all is its hard label). Estimates go
    to RUN/labels/rollouts.jsonl as they come, so the job resumes where it stopped;
    `journey export --format prm` carries them beside the critic's labels, with their
    source. Final answers are left to the verifier; sessions without a gold answer are
    skipped and counted.
    """
    from rich.table import Table

    from journey.agents import RolloutJudge, RolloutSettings, RolloutSpec
    from journey.agents.backends import ClientPool, parse_model_spec
    from journey.errors import DatasetError
    from journey.runs import RunDirectory
    from journey.runs.rollout_labels import LabelReport, label_run
    from journey.view.progress import labelling_progress

    if not (run / "sessions").is_dir():
        raise DatasetError(f"{str(run)!r} is not a run directory (no sessions/ folder)")
    spec = parse_model_spec(model)  # a wrong spec fails before anything is read
    settings = RolloutSettings(samples=rollouts, temperature=temperature, max_tokens=tokens)
    judge_spec = RolloutSpec(model=str(spec), settings=settings)

    async def go() -> LabelReport:
        pool = ClientPool()
        try:
            return await label_run(
                RunDirectory(run),
                RolloutJudge(pool.get(spec), settings),
                judge_spec,
                concurrency=concurrency,
                force=force,
                progress=labelling_progress(err_console, enabled=not no_progress),
            )
        finally:
            await pool.close()

    with resumable(run):
        report = asyncio.run(go())
    if json_output:
        print(report.model_dump_json(indent=2))
    else:
        table = Table(title=f"rollout labels of {run}", show_header=False)
        table.add_row("judge", report.judge)
        table.add_row("sessions with a gold answer", str(report.sessions))
        for reason, count in report.skipped.items():
            table.add_row(f"sessions skipped: {reason}", str(count))
        table.add_row("steps (final answers aside)", str(report.steps))
        table.add_row("labelled before", str(report.already))
        table.add_row("labelled now", str(report.labelled))
        table.add_row("model errors (retried next time)", str(report.errors))
        usage = report.usage
        table.add_row(
            "tokens this time", f"{usage.prompt_tokens} in, {usage.completion_tokens} out"
        )
        table.add_row("wall time", f"{report.wall_time:.1f} s")
        console.print(table)
    for line in report.error_messages:
        warn("error", line, sep=" ")
    if report.stopped is not None:
        warn("stopped", report.stopped)
        raise typer.Exit(1)
