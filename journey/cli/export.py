"""`journey export`: finished sessions of runs as a TRL training set, with a dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from journey.cli._app import app, console, warn
from journey.errors import ConfigError


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
        str, typer.Option("--format", "-f", help="sft, shortcut, dpo, prm or revision.")
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
    max_violations: Annotated[
        int | None,
        typer.Option(help="Skip sessions with more protocol violations than this."),
    ] = None,
    transcript: Annotated[
        str,
        typer.Option(
            help="sft: smoothed (the rewrite 'journey smooth' accepted, where there is one; "
            "the draft elsewhere) or draft."
        ),
    ] = "smoothed",
    policy_reasoning: Annotated[
        bool,
        typer.Option(
            help="sft: put the policy's thoughts (a reasoning model's) in the long thought."
        ),
    ] = False,
    walk_trials: Annotated[
        int | None,
        typer.Option(
            help="sft of beam runs: failed branches the tree walk enters per correct step "
            "(default: the run's own setting, else 2)."
        ),
    ] = None,
    wrong_turns: Annotated[
        str | None,
        typer.Option(
            help="sft of beam runs: the failed branches the tree walk may enter: all; "
            "reasoned (only those whose reflection says why they failed, a critique or a "
            "false claim, not a bare 'that does not seem right'); followed (reasoned, and a "
            "reflection naming a right value, '8 * 7 is 56', only where the next step uses "
            "it, once per step). Default: all.",
        ),
    ] = None,
    reasoned_trials: Annotated[
        bool, typer.Option("--reasoned-trials-only", hidden=True, help="--wrong-turns reasoned")
    ] = False,
    followed_corrections: Annotated[
        bool,
        typer.Option("--followed-corrections-only", hidden=True, help="--wrong-turns followed"),
    ] = False,
    prm_unknown: Annotated[
        str,
        typer.Option(
            help="prm: a step whose label is unknown drops its row (drop), ends it before "
            "the step (skip), or stays with a null label (keep)."
        ),
    ] = "drop",
    credit_verified_path: Annotated[
        bool,
        typer.Option(
            help="Label steps with no evidence (unknown) on the path to a verified answer "
            "correct (source verified_path). Off: such steps stay unknown."
        ),
    ] = False,
    allow_empty: Annotated[
        bool, typer.Option(help="Write the file and its card even when no row is left.")
    ] = False,
    max_pairs_per_session: Annotated[int, typer.Option(help="DPO pairs kept per session.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Write at most this many rows.")] = None,
    held_out: Annotated[
        str | None,
        typer.Option(
            help="An evaluation set (any --dataset form): sessions of its problems are left "
            "out, counted in the card, so no model is trained on what it is tested on."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the dataset card as JSON instead of a table.")
    ] = False,
) -> None:
    """Write a run's finished sessions as SFT, shortcut, DPO or PRM rows (JSONL) plus a card."""
    from journey.exports.export import ExportOptions, card_path, export_runs
    from journey.longthought import LongThoughtOptions, wrong_turns_choice, wrong_turns_of_flags
    from journey.problems import HeldOutProblems

    if wrong_turns is not None and (reasoned_trials or followed_corrections):
        raise ConfigError("give --wrong-turns alone, without the flags it replaces")
    walk_choice = (
        wrong_turns_choice(wrong_turns)
        if wrong_turns is not None
        else wrong_turns_of_flags(
            reasoned_trials_only=reasoned_trials, followed_corrections_only=followed_corrections
        )
    )
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
        max_violations=max_violations,
        transcript=transcript,
        prm_unknown=prm_unknown,
        credit_verified_path=credit_verified_path,
        writer=LongThoughtOptions(
            include_reasoning=policy_reasoning,
            trials_per_node=walk_trials,
            wrong_turns=walk_choice,
        ),
        allow_empty=allow_empty,
    )
    evaluation = HeldOutProblems.load(held_out) if held_out else None
    card = export_runs(runs, out, options, held_out=evaluation)
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
    if card.held_out:
        held_out_set = f"{card.held_out['problems']} problems of {card.held_out['source']}"
        table.add_row("held out", held_out_set)
    for reason, count in card.skipped.items():
        table.add_row("skipped", f"{count} {reason}")
    for reason, count in card.rows_dropped.items():
        table.add_row("rows dropped", f"{count} {reason}")
    for reason, count in card.dropped_upstream.items():
        table.add_row("dropped by the run", f"{count} {reason}")
    for source, counts in card.labels.items():
        table.add_row(
            f"labels · {source}", ", ".join(f"{n} {label}" for label, n in counts.items())
        )
    for which, count in card.transcripts.items():
        table.add_row("long thoughts", f"{count} {which}")
    for why, count in card.wrong_turns_left_out.items():
        table.add_row("wrong turns left out", f"{count} {why}")
    console.print(table)
    if not card.rows:
        warn("no rows written", "--allow-empty kept an empty file")
