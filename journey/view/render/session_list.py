"""A run's sessions as a numbered table that shrinks its problem column to fit."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from journey.protocols import Outcome
from journey.runs.stats import ListedSession
from journey.view.render._looks import OUTCOME_LOOK, shorten

__all__ = ["render_session_list"]

_LIST_LAYOUTS = [
    *((1, chars) for chars in range(48, 23, -2)),
    *((0, chars) for chars in range(48, 11, -2)),
]
"""(column padding, problem characters) for a session listing, tried in turn until it fits."""
_ID_CHARS = 8
"""Session ids in a listing are cut to their shortest unique prefix of at least this length."""


def _outcome_text(outcome: str) -> Text:
    try:
        words, style = OUTCOME_LOOK[Outcome(outcome)]
    except ValueError:
        words, style = f"… {outcome}", "bold yellow"
    return Text(words, style=style)


def _short_ids(ids: Sequence[str]) -> list[str]:
    """The shortest prefix length (at least `_ID_CHARS`) that keeps every id unique."""
    length = _ID_CHARS
    while len({i[:length] for i in ids}) < len(set(ids)):
        length += 1
    return [i[:length] for i in ids]


class _SessionList:
    """A session table whose problem column shrinks until the table fits the console."""

    def __init__(self, sessions: Sequence[ListedSession]) -> None:
        self.sessions = list(sessions)

    def table(self, padding: int, problem_chars: int) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, padding),
            header_style="bold",
        )
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("session", no_wrap=True)
        table.add_column("problem", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("stop", no_wrap=True)
        for header in ("turns", "back", "refl", "viol", "tokens"):
            table.add_column(header, justify="right", no_wrap=True)
        ids = _short_ids([row.session_id for row in self.sessions])
        for number, (row, short_id) in enumerate(zip(self.sessions, ids, strict=True), 1):
            table.add_row(
                str(number),
                short_id,
                Text(shorten(row.problem, problem_chars) or "—"),
                _outcome_text(row.outcome),
                Text((row.stop_reason or "—").replace("_", " ")),
                str(row.turns),
                str(row.backtracks),
                str(row.reflections),
                str(row.violations),
                f"{row.tokens:,}",
            )
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(10_000)  # measure the natural width, not the clamped one
        for padding, chars in _LIST_LAYOUTS:
            table = self.table(padding, chars)
            if console.measure(table, options=unbounded).maximum <= options.max_width:
                break
        yield table


def render_session_list(sessions: Sequence[ListedSession]) -> RenderableType:
    """A run's sessions, one numbered row each (the numbers `journey replay RUN N` takes).

    Args:
        sessions: Rows from `session_overviews`, in the order to number them.

    Returns:
        A table: number, id (shortest unique prefix of 8 or more characters), problem
        (shortened to fit the console), outcome, stop reason, turns, backtracks,
        reflections, protocol violations and tokens (prompt + completion, all roles).
    """
    return _SessionList(sessions)
