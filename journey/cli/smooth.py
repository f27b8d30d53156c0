"""`journey smooth`: rewrite a run's long thoughts as fluent prose, keeping only faithful ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console, err_console, resumable, warn


@app.command(
    epilog="Examples:\n\n"
    "    journey smooth runs/math500 --limit 5\n\n"
    "    journey smooth runs/math500 --model openai:gpt-4o --concurrency 16\n\n"
    "    journey smooth runs/math500            (again: smooths only what is left)"
)
def smooth(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    model: Annotated[
        str, typer.Option("--model", help="Model spec of the rewriter (see 'journey models').")
    ] = "embedded",
    concurrency: Annotated[int, typer.Option(help="Sessions rewritten at once.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Smooth at most this many sessions.")] = None,
    min_length: Annotated[
        float,
        typer.Option(help="Reject a rewrite shorter than this share of its draft (in characters)."),
    ] = 0.5,
    max_length: Annotated[
        float, typer.Option(help="Reject a rewrite longer than this multiple of its draft.")
    ] = 2.0,
    force: Annotated[
        bool,
        typer.Option(
            help="Go on although the run was smoothed before with another model or checker "
            "settings (recorded in RUN/smooth.json)."
        ),
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the counts as JSON instead of a table.")
    ] = False,
) -> None:
    """Rewrite each solved session's transcript.md into transcript.smoothed.md, if faithful.

    A rewrite that changes the final answer, drops a failed branch or a reflection,
    marks a new answer or strays too far in length is rejected (the draft is kept)
    and counted by reason in the session's smoothing.json. Run it again to resume.
    """
    from rich.table import Table

    from journey.agents.backends import ClientPool, parse_model_spec
    from journey.errors import DatasetError
    from journey.longthought import FaithfulnessChecker, Smoother
    from journey.runs import RunDirectory, SmoothingTally, smooth_run
    from journey.view.progress import smoothing_progress

    if not (run / "sessions").is_dir():
        raise DatasetError(f"{str(run)!r} is not a run directory (no sessions/ folder)")
    checker = FaithfulnessChecker(min_length_ratio=min_length, max_length_ratio=max_length)
    spec = parse_model_spec(model)  # a wrong spec fails before anything is read

    async def go() -> SmoothingTally:
        pool = ClientPool()
        try:
            smoother = Smoother(pool.get(spec), checker=checker)
            directory = RunDirectory(run)
            return await smooth_run(
                directory,
                smoother,
                model=str(spec),
                concurrency=concurrency,
                limit=limit,
                force=force,
                progress=smoothing_progress(err_console, enabled=not no_progress),
            )
        finally:
            await pool.close()

    with resumable(run):
        tally = asyncio.run(go())
    if json_output:
        print(tally.model_dump_json(indent=2))
        return
    table = Table(title=f"smoothing {run}", show_header=False)
    table.add_row("solved sessions", str(tally.sessions))
    table.add_row("smoothed before", str(tally.skipped))
    table.add_row("accepted", str(tally.accepted))
    table.add_row("rejected", str(tally.rejected))
    for kind, count in tally.rejected_by_kind.items():
        table.add_row(f"  {kind}", str(count))
    table.add_row("model errors (retried next time)", str(tally.errors))
    table.add_row(
        "tokens this time", f"{tally.usage.prompt_tokens} in, {tally.usage.completion_tokens} out"
    )
    console.print(table)
    for line in tally.error_messages:
        warn("error", line, sep=" ")
