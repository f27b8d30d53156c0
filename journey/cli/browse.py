"""`journey browse`: explore a run (or two side by side) in the terminal, or print a summary."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.text import Text

from journey.cli._app import app, console
from journey.errors import ConfigError

if TYPE_CHECKING:
    from journey.view.browse.model import RunIndex, SessionFilter, SortKey

_Choice = TypeVar("_Choice", bound=StrEnum)


@app.command(
    epilog="Examples:\n\n"
    "    journey browse runs/debate-20261124-151203\n\n"
    "    journey browse runs/iteration-1 runs/iteration-2      # side by side\n\n"
    "    journey browse RUN --outcome incorrect --search wait --sort backtracks\n\n"
    "    journey browse RUN --summary --limit 20               # no interaction"
)
def browse(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    other: Annotated[
        Path | None, typer.Argument(metavar="[RUN2]", help="A second run to compare with.")
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option(help="Start filtered: correct, incorrect, unverified or unfinished."),
    ] = None,
    stop: Annotated[str | None, typer.Option(help="Start filtered on a stop reason.")] = None,
    search: Annotated[
        str | None,
        typer.Option(help="Start filtered on transcripts containing a word or matching a regex."),
    ] = None,
    min_backtracks: Annotated[
        int, typer.Option(help="Only sessions with at least this many backtracks.")
    ] = 0,
    sort: Annotated[
        str,
        typer.Option(
            help="Sort column: index, outcome, turns, depth, backtracks, "
            "reflections, tokens or thought (largest first)."
        ),
    ] = "index",
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            help="Print the rates and the (filtered) sessions instead of browsing; "
            "the default when stdout is not a terminal.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="--summary: list at most this many sessions.")] = 30,
) -> None:
    """Browse a run's sessions: a sortable, filterable table with each session's tree,
    transcript and conversation; with RUN2, the same problems side by side.

    Keys: arrows move, s sorts, o r b / filter, 1 2 3 switch panes, ? lists every key, q quits.
    """
    from journey.view.browse.model import OutcomeClass, SessionFilter, SortKey, load_run

    where = SessionFilter(
        outcome=_choice(OutcomeClass, outcome, "--outcome") if outcome else None,
        stop_reason=stop,
        min_backtracks=min_backtracks,
        search=search,
    )
    key = _choice(SortKey, sort, "--sort")
    runs = [load_run(path) for path in ([run] if other is None else [run, other])]
    if summary or not _interactive():
        _print_summary(runs, where, key, limit)
        return
    try:
        from journey.view.browse.app import BrowseApp
    except ImportError:
        raise ConfigError(
            "journey browse needs Textual, which is not installed: pip install 'textual>=8.2' "
            "(or use --summary)"
        ) from None
    BrowseApp(runs, where=where, sort=key, descending=key is not SortKey.INDEX).run()


def _interactive() -> bool:
    """Whether the app can start: stdout is a terminal (not a pipe, not a file)."""
    return sys.stdout.isatty()


def _choice(kind: type[_Choice], value: str, option: str) -> _Choice:
    try:
        return kind(value.strip().lower())
    except ValueError:
        names = ", ".join(str(e) for e in kind)
        raise ConfigError(f"{option} takes one of {names}; got {value!r}") from None


def _print_summary(runs: list[RunIndex], where: SessionFilter, key: SortKey, limit: int) -> None:
    """The run rates (`journey stats`), then the filtered, sorted sessions of the first run."""
    from journey.view.browse import (
        SortKey,
        TranscriptSearch,
        pair_runs,
        sort_pairs,
        visible_pairs,
    )
    from journey.view.render import render_run_stats, render_session_list

    console.print(render_run_stats([run.stats() for run in runs]))
    for run in runs:
        if run.bad_lines:
            console.print(
                Text(
                    f"⚠ {run.root}: {len(run.bad_lines)} damaged lines of sessions.jsonl "
                    f"skipped (lines {', '.join(map(str, run.bad_lines[:10]))})",
                    style="yellow",
                ),
                soft_wrap=True,
            )
    for run in runs:
        matches = TranscriptSearch(run).matching(where.search) if where.search else None
        pairs = visible_pairs(pair_runs(run.rows), where, matches=matches)
        pairs = sort_pairs(pairs, key, descending=key is not SortKey.INDEX)
        heading = f"{run.root} · {len(pairs):,} of {len(run.rows):,} sessions · "
        heading += f"filter: {where.describe()} · sort: {key.value}"
        console.print(Text(f"\n{heading}", style="bold"), soft_wrap=True)
        rows = [pair.a for pair in pairs[:limit] if pair.a is not None]
        if rows:
            console.print(render_session_list(rows))
        if len(pairs) > limit:
            console.print(Text(f"… and {len(pairs) - limit:,} more (--limit)", style="dim"))
