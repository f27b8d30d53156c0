"""`journey stats`: a run's numbers, or several runs side by side."""

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
    "    journey stats iterations/tiny/round-*/synth          # rounds side by side\n\n"
    "    journey stats RUN --keyword wait --keyword 'let me' --json\n\n"
    "    journey stats RUN --prices prices.yaml              # cost at these prices"
)
def stats(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN...",
            help="Run directories; with several, side by side and Δ of the last from the first.",
        ),
    ],
    keyword: Annotated[
        list[str] | None,
        typer.Option(
            help="Count the share of transcripts containing this word or phrase "
            "(case-insensitive, whole words). Repeatable; default: wait, hmm, let me."
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="Prices of models by name (YAML or JSON: model -> {in, out}, USD per million "
            "tokens), over those the run was given and journey's dated table."
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the numbers as JSON (a list with several runs)."),
    ] = False,
) -> None:
    """Sum up a run: yield, outcomes, stop reasons, means per session, keywords, tokens,
    cost (per role, per action, per solved session, paid)."""
    from journey.runs.prices import load_prices
    from journey.runs.stats import DEFAULT_KEYWORDS, read_run, run_stats
    from journey.view.render import render_run_stats

    keywords = tuple(keyword) if keyword else DEFAULT_KEYWORDS
    given = load_prices(prices) if prices is not None else None
    numbers = [run_stats(read_run(path), keywords=keywords, prices=given) for path in runs]
    if json_output:
        dumped = [n.model_dump(mode="json") for n in numbers]
        print(json.dumps(dumped[0] if len(runs) == 1 else dumped, indent=2))
        return
    console.print(render_run_stats(numbers))
