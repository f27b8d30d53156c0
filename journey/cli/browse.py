"""`journey browse`: explore a run (or several side by side) in the terminal, or print a summary."""

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
    from journey.view.browse.model import RunIndex, SessionFilter, SessionPair, SortKey

_Choice = TypeVar("_Choice", bound=StrEnum)


@app.command(
    epilog="Examples:\n\n"
    "    journey browse runs/debate-20261124-151203\n\n"
    "    journey browse runs/iteration-1 runs/iteration-2      # side by side\n\n"
    "    journey browse runs/iter-{1,2,3,4} --summary --by D --outcome incorrect\n\n"
    "    journey browse RUN --outcome incorrect --search wait --sort backtracks\n\n"
    "    journey browse RUN --summary --limit 20               # no interaction"
)
def browse(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN",
            help="A run directory, or several (up to 26) to compare problem by problem.",
        ),
    ],
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
    limit: Annotated[
        int, typer.Option(help="--summary: list at most this many sessions (problems).")
    ] = 30,
    by: Annotated[
        str,
        typer.Option(
            help="Several runs: the run the filters and the sort look at, by its letter "
            "(A, B...) or number (1, 2...); 'a' moves on in the browser."
        ),
    ] = "A",
) -> None:
    """Browse a run's sessions: a sortable, filterable table with each session's tree,
    transcript and conversation; with several runs, the same problems side by side (a
    column group and a pane per run, named A, B, C...).

    Keys: arrows move, s sorts, o r b / filter, 1 2 3 panes, a next run, ? help, q quits.
    """
    from journey.view.browse.model import (
        MAX_RUNS,
        OutcomeClass,
        SessionFilter,
        SortKey,
        load_run,
    )

    where = SessionFilter(
        outcome=_choice(OutcomeClass, outcome, "--outcome") if outcome else None,
        stop_reason=stop,
        min_backtracks=min_backtracks,
        search=search,
    )
    key = _choice(SortKey, sort, "--sort")
    if len(runs) > MAX_RUNS:
        raise ConfigError(f"journey browse compares at most {MAX_RUNS} runs; got {len(runs)}")
    side = _side(by, len(runs))
    indexes = [load_run(path) for path in runs]
    if summary or not _interactive():
        _print_summary(indexes, where, key, limit, side)
        return
    try:
        from journey.view.browse.app import BrowseApp
    except ImportError:
        raise ConfigError(
            "journey browse needs Textual, which is not installed: pip install 'textual>=8.2' "
            "(or use --summary)"
        ) from None
    descending = key is not SortKey.INDEX
    BrowseApp(indexes, where=where, sort=key, descending=descending, side=side).run()


def _interactive() -> bool:
    """Whether the app can start: stdout is a terminal (not a pipe, not a file)."""
    return sys.stdout.isatty()


def _side(by: str, runs: int) -> int:
    """The 0-based run that `--by` names: a letter (A, B...) or a number (1, 2...)."""
    text = by.strip().upper()
    side = -1
    if text.isdigit():
        side = int(text) - 1
    elif len(text) == 1 and "A" <= text <= "Z":
        side = ord(text) - ord("A")
    if not 0 <= side < runs:
        letters = "A" if runs == 1 else f"A to {chr(ord('A') + runs - 1)}"
        numbers = "1" if runs == 1 else f"1 to {runs}"
        raise ConfigError(
            f"--by takes a run's letter ({letters}) or number ({numbers}); got {by!r}"
        )
    return side


def _choice(kind: type[_Choice], value: str, option: str) -> _Choice:
    try:
        return kind(value.strip().lower())
    except ValueError:
        names = ", ".join(str(e) for e in kind)
        raise ConfigError(f"{option} takes one of {names}; got {value!r}") from None


def _print_summary(
    runs: list[RunIndex], where: SessionFilter, key: SortKey, limit: int, side: int
) -> None:
    """The run rates (`journey stats`), then the filtered, sorted sessions: one run's as a
    numbered list, several runs' problem by problem, a column group per run."""
    from journey.view.browse import (
        SortKey,
        TranscriptSearch,
        pair_runs,
        run_label,
        sort_pairs,
        visible_pairs,
    )
    from journey.view.render import render_run_stats

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
    by = runs[side]
    matches = TranscriptSearch(by).matching(where.search) if where.search else None
    pairs = pair_runs(*(run.rows for run in runs))
    shown = visible_pairs(pairs, where, side=side, matches=matches)
    shown = sort_pairs(shown, key, descending=key is not SortKey.INDEX, side=side)
    if len(runs) == 1:
        heading = f"{by.root} · {len(shown):,} of {len(by.rows):,} sessions · "
    else:
        heading = f"{len(shown):,} of {len(pairs):,} problems · "
    heading += f"filter: {where.describe()} · sort: {key.value}"
    if len(runs) > 1:
        heading += f" · by run {run_label(side)}"
    console.print(Text(f"\n{heading}", style="bold"), soft_wrap=True)
    if len(runs) == 1:
        _print_session_list(shown[:limit])
    else:
        _print_comparison(runs, shown[:limit], key, side)
    if len(shown) > limit:
        console.print(Text(f"… and {len(shown) - limit:,} more (--limit)", style="dim"))


def _print_session_list(pairs: list[SessionPair]) -> None:
    from journey.view.render import render_session_list

    rows = [pair.a for pair in pairs if pair.a is not None]
    if rows:
        console.print(render_session_list(rows))


def _print_comparison(
    runs: list[RunIndex], pairs: list[SessionPair], key: SortKey, side: int
) -> None:
    """Each run's letter and path, then the browser's table lines, fitted to the console."""
    from journey.view.browse import SortKey, run_label
    from journey.view.browse.panes import header_text, row_text
    from journey.view.render import run_names

    names = run_names([str(run.root) for run in runs])
    legend = " · ".join(f"{run_label(i)} {name}" for i, name in enumerate(names))
    console.print(Text(legend, style="dim"), soft_wrap=True)
    width = console.width
    descending = key is not SortKey.INDEX
    console.print(header_text(width, len(runs), key, descending=descending, side=side))
    for pair in pairs:
        console.print(row_text(pair, width, len(runs)))
