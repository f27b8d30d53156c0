"""`journey export`: finished sessions of runs as a TRL training set, with a dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from journey.cli._app import app, console, err_console


@app.command(
    epilog="Examples:\n\n"
    "    journey export runs/math500 --format sft --out data/sft.jsonl\n\n"
    "    journey export runs/m500-s0 runs/m500-s1 --format shortcut --out data/shortcut.jsonl\n\n"
    "    journey export RUN --format dpo --max-pairs-per-session 2 --out data/dpo.jsonl\n\n"
    "    journey export RUN --format sft --min-reflections 1 --keyword wait --max-tokens 4096 "
    "--out data/sft-reflective.jsonl"
)
def export(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (from 'journey synth').")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="sft, shortcut, dpo or prm.")
    ] = "sft",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="JSONL file to write (its card: FILE.card.json).")
    ] = Path("export.jsonl"),
    layout: Annotated[
        str,
        typer.Option(
            help="sft/shortcut rows: prompt-completion (TRL trains on the completion only) "
            "or messages (plain TRL trains on every token; 'journey train' on the last reply)."
        ),
    ] = "prompt-completion",
    only_verified: Annotated[
        bool | None,
        typer.Option(
            "--only-verified/--all-outcomes",
            help="Keep only solved sessions (default: on for sft, shortcut, dpo; off for prm).",
            show_default=False,
        ),
    ] = None,
    same_problems: Annotated[
        bool,
        typer.Option(
            help="sft and shortcut keep only sessions with both a long thought and a shortcut, "
            "and judge --max-tokens on the long thought, so both exports share their problems."
        ),
    ] = True,
    min_reflections: Annotated[int, typer.Option(help="Fewest reflections a session needs.")] = 0,
    min_backtracks: Annotated[int, typer.Option(help="Fewest backtracks a session needs.")] = 0,
    keyword: Annotated[
        list[str] | None,
        typer.Option(help="Regex the transcript must contain (case-insensitive). Repeatable."),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Skip rows longer than this many tokens.")
    ] = None,
    tokenizer: Annotated[
        str,
        typer.Option(help="How --max-tokens counts: heuristic (words, chars/4) or embedded."),
    ] = "heuristic",
    max_pairs_per_session: Annotated[int, typer.Option(help="DPO pairs kept per session.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Write at most this many rows.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the dataset card as JSON instead of a table.")
    ] = False,
) -> None:
    """Write a run's finished sessions as SFT, shortcut, DPO or PRM rows (JSONL) plus a card."""
    from journey.synthesis.export import ExportOptions, card_path, export_runs

    options = ExportOptions(
        format=format,
        layout=layout,
        only_verified=only_verified,
        same_problems=same_problems,
        min_reflections=min_reflections,
        min_backtracks=min_backtracks,
        keywords=tuple(keyword or ()),
        max_tokens=max_tokens,
        limit=limit,
        max_pairs_per_session=max_pairs_per_session,
        tokenizer=tokenizer,
    )
    card = export_runs(runs, out, options)
    if json_output:
        print(card.model_dump_json(indent=2))
        return
    table = Table(title="Export", box=box.ROUNDED, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file", f"{card.file} ({card.rows} rows)")
    table.add_row("card", str(card_path(out)))
    table.add_row("format", card.format + (f" · {card.layout}" if card.layout else ""))
    table.add_row("sessions", f"{card.sessions_exported}/{card.sessions_seen} exported")
    for reason, count in card.skipped.items():
        table.add_row("skipped", f"{count} {reason}")
    console.print(table)
    if not card.rows:
        err_console.print("[yellow]no rows written[/]: check the filters and the runs' outcomes")
