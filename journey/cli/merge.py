"""`journey merge`: shard runs combined into one run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console


@app.command(
    epilog="Examples:\n\n"
    "    journey merge runs/m500-s0 runs/m500-s1 runs/m500-s2 runs/m500-s3 --out runs/m500\n\n"
    "    journey merge runs/m500-s* --out runs/m500        (again later: adds what is new)"
)
def merge(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to merge, in order.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged run directory.")],
    force: Annotated[
        bool,
        typer.Option(help="Merge runs made with another strategy, other models or critic mode."),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
) -> None:
    """Combine runs of 'journey synth --shard i/n' (or of the same options) into one run."""
    from journey.runs.merge import merge_runs
    from journey.view.reports import render_merge_report

    report = merge_runs(runs, out, force=force)
    if json_output:
        print(report.model_dump_json(indent=2))
        return
    console.print(render_merge_report(report))
