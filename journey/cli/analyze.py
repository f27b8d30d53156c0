"""`journey analyze`: long thoughts of runs, exports, eval records or any JSONL, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console, warn
from journey.errors import ConfigError


@app.command(
    epilog="Examples:\n\n"
    "    journey analyze runs/iteration-1 runs/iteration-2      # two runs side by side\n\n"
    "    journey analyze data/sft.jsonl evals/journey --png plots/\n\n"
    "    journey analyze o1-thoughts.jsonl --column response.text --keyword wait "
    "--keyword 'let me check'\n\n"
    "    journey analyze runs/m500 --tokenizer embedded --limit 200 --json\n\n"
    "    journey analyze runs/m500 --thought draft    # the drafts, not the smoothed rewrites"
)
def analyze(
    sources: Annotated[
        list[Path],
        typer.Argument(
            metavar="SOURCE",
            help="Run directories, 'journey eval' directories or records.jsonl, "
            "'journey export' sft/shortcut JSONL files, or any JSONL with --column; "
            "the kind is told from what is there.",
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of the table.")
    ] = False,
    png: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write a token-length histogram per source and one overlay (PNG) here; "
            "needs matplotlib (the 'plot' extra).",
        ),
    ] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option(
            help="Rate this word or phrase per 1k tokens (whole words, any case). "
            "Repeatable; default: wait, hmm, alternatively, let me check, let me verify, "
            "actually, but, so, perhaps, maybe."
        ),
    ] = None,
    tokenizer: Annotated[
        str,
        typer.Option(
            help="How tokens are counted: heuristic (also 'cheap': the larger of words and "
            "chars/4) or embedded (the embedded model's tokenizer)."
        ),
    ] = "heuristic",
    column: Annotated[
        str | None,
        typer.Option(
            help="The text field of JSONL files, a dotted path allowed "
            "(response.text, messages.-1.content); files whose first row lacks it are "
            "read by their kind."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Read at most this many thoughts per source.")
    ] = None,
    thought: Annotated[
        str,
        typer.Option(
            help="Which long thought of a run's sessions: smoothed (the rewrite 'journey "
            "smooth' accepted, where there is one; else the draft) or draft "
            "(transcript.md). The table counts how many of each every run gave; exports "
            "and eval records are read as they are."
        ),
    ] = "smoothed",
) -> None:
    """Measure long thoughts: tokens, lines, steps, keywords, reflections and backtracks.

    Compares N sources side by side, as the seed compared o1's thoughts and its own
    iterations: per-source distributions of tokens (mean, median, p90), lines and
    steps per thought, each keyword, reflection and backtrack per thousand tokens, and
    the share of thoughts with a reflection or a backtrack. A smoothed run is read by
    its smoothed rewrites (--thought draft reads the drafts). Malformed JSONL lines are
    skipped and counted.
    """
    from journey.evaluation.thought_analysis import (
        DEFAULT_KEYWORDS,
        ThoughtVersion,
        analyse_sources,
        analysis_document,
        token_counter,
    )

    try:
        version = ThoughtVersion(thought.strip().lower())
    except ValueError:
        raise ConfigError(f"--thought takes smoothed or draft; got {thought!r}") from None
    count_tokens = token_counter(tokenizer)
    name = "embedded" if tokenizer == "embedded" else "heuristic"
    analyses = analyse_sources(
        sources,
        count_tokens=count_tokens,
        keywords=tuple(keyword) if keyword else DEFAULT_KEYWORDS,
        column=column,
        limit=limit,
        thought=version,
    )
    for analysis in analyses:
        source = analysis.source
        if source.malformed_lines:
            lines = "line" if source.malformed_lines == 1 else "lines"
            first = "; ".join(source.malformed_examples)
            warn(source.name, f"{source.malformed_lines} malformed {lines} skipped ({first})")
    written: list[Path] = []
    if png is not None:
        from journey.evaluation.thought_plots import plot_token_histograms

        written = plot_token_histograms(analyses, png, tokenizer=name)
    if json_output:
        document = analysis_document(analyses, tokenizer=name, thought=version)
        if written:
            document["png"] = [str(path) for path in written]
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    from journey.view.analysis_report import render_thought_analysis

    console.print(render_thought_analysis(analyses, tokenizer=name, thought=version))
    if written:
        console.print(f"histograms: {', '.join(str(path) for path in written)}", soft_wrap=True)
