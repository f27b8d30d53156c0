"""`journey stats`: a run's numbers, or two runs side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console


@app.command(
    epilog="Examples:\n\n"
    "    journey stats runs/debate-20261124-151203\n\n"
    "    journey stats runs/qwen-7b runs/qwen-7b-sft          # side by side, with Δ\n\n"
    "    journey stats RUN --keyword wait --keyword 'let me' --json"
)
def stats(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    other: Annotated[
        Path | None, typer.Argument(metavar="[RUN2]", help="A second run to compare with.")
    ] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option(
            help="Count the share of transcripts containing this word or phrase "
            "(case-insensitive, whole words). Repeatable; default: wait, hmm, let me."
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the numbers as JSON (a list of two with RUN2)."),
    ] = False,
) -> None:
    """Sum up a run: yield, outcomes, stop reasons, means per session, keywords, tokens."""
    from journey.runs.stats import DEFAULT_KEYWORDS, read_run, run_stats
    from journey.view.render import render_run_stats

    keywords = tuple(keyword) if keyword else DEFAULT_KEYWORDS
    runs = [run] if other is None else [run, other]
    numbers = [run_stats(read_run(path), keywords=keywords) for path in runs]
    if json_output:
        dumped = [n.model_dump(mode="json") for n in numbers]
        print(json.dumps(dumped[0] if other is None else dumped, indent=2))
        return
    console.print(render_run_stats(numbers))
