"""The browser's rich renderables: table cells, the detail panes, the run's rates.

Only rich here (no Textual), and the same pieces as `journey replay`: `render_tree`
for the tree, `SessionRenderer` for the conversation, so a session looks the same in
both. Tests render these into a string console.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.text import Text

from journey.runs.stats import ListedSession, RunStats
from journey.view.browse.detail import SessionDetail
from journey.view.browse.model import (
    OutcomeClass,
    SessionPair,
    SortKey,
    outcome_class,
    run_label,
)
from journey.view.render import SessionRenderer, render_tree

__all__ = [
    "MIN_PROBLEM_CHARS",
    "OUTCOME_CELL",
    "conversation_pane",
    "detail_heading",
    "header_text",
    "outcome_cell",
    "outcome_mark",
    "row_text",
    "stats_line",
    "transcript_pane",
    "tree_pane",
]

OUTCOME_CELL: dict[OutcomeClass, tuple[str, str]] = {
    OutcomeClass.CORRECT: ("✓ solved", "bold green"),
    OutcomeClass.INCORRECT: ("✗ failed", "bold red"),
    OutcomeClass.UNVERIFIED: ("? unver.", "bold yellow"),
    OutcomeClass.UNFINISHED: ("… unfin.", "yellow"),
}
"""Words (8 characters at most) and style of each outcome in the table."""


def outcome_cell(row: ListedSession | None) -> Text:
    """The outcome cell; a dim dash where the run has no session for the problem."""
    if row is None:
        return Text("—", style="dim")
    words, style = OUTCOME_CELL[outcome_class(row)]
    if row.outcome == "error":
        words = "✗ error"
    return Text(words, style=style)


def outcome_mark(row: ListedSession | None) -> Text:
    """The outcome as one sign (✓ ✗ ? …), for tables where many runs share the width."""
    cell = outcome_cell(row)
    return cell[:1] if row is not None else cell


def _note(words: str) -> Text:
    return Text(f"⚠ {words}", style="bold yellow")


def detail_heading(detail: SessionDetail | None, run_name: str) -> Text:
    """One line above a pane: which run and session, outcome and stop reason."""
    if detail is None:
        return Text(f"{run_name}: no session for this problem", style="dim")
    row = detail.row
    heading = Text(
        f"{run_name} · {row.session_id[:12]} · ", style="bold", no_wrap=True, overflow="ellipsis"
    )
    heading.append_text(outcome_cell(row))
    if row.stop_reason:
        heading.append(f" · {row.stop_reason.replace('_', ' ')}", style="dim")
    return heading


def tree_pane(detail: SessionDetail) -> RenderableType:
    """The reasoning tree as `journey replay --tree` draws it, or why there is none."""
    if detail.tree is None:
        return _note(f"no tree to draw: {detail.tree_error}")
    return render_tree(detail.tree, final_node_id=detail.final_node_id)


def transcript_pane(detail: SessionDetail) -> RenderableType:
    """The long thought, as written to transcript.md (or from the log if unfinished)."""
    if not detail.transcript:
        return Text("(no long thought)", style="dim")
    return Text(detail.transcript)


def conversation_pane(detail: SessionDetail) -> RenderableType:
    """The agents' turns, each event as the replay shows it, and notes on a damaged log."""
    if detail.log is None:
        return _note("no event log")
    renderer = SessionRenderer(Console(file=io.StringIO()))  # `renderable` prints nothing
    parts: list[RenderableType] = []
    for event in detail.log.events:
        renderable = renderer.renderable(event)
        if renderable is not None:
            parts.append(renderable)
    if detail.log.bad_lines:
        parts.append(_note(f"damaged log lines skipped: {detail.log.bad_lines}"))
    if detail.log.truncated:
        parts.append(_note("the event log is cut short: shown up to the last complete event"))
    if not detail.log.finished:
        parts.append(_note("unfinished: the log ends without session_ended"))
    return Group(*parts)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _mean(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def stats_line(name: str, stats: RunStats | None) -> Text:
    """A run's aggregate rates in one line (under 80 columns for a short name)."""
    line = Text(f"{name}: ", style="bold", no_wrap=True, overflow="ellipsis")
    if stats is None:
        line.append("counting…", style="dim")
        return line
    line.append(f"{stats.sessions:,} session{'' if stats.sessions == 1 else 's'} · yield ")
    line.append(_rate(stats.yield_rate), style="bold green")
    line.append(
        f" · turns {_mean(stats.mean_turns)} · bt {_mean(stats.mean_backtracks)}"
        f" · rf {_mean(stats.mean_reflections)}"
    )
    wait = stats.keyword_rates.get("wait")
    if wait is not None:
        line.append(f" · wait {_rate(wait)}")
    if stats.unfinished:
        line.append(f" · {stats.unfinished} unfin.", style="yellow")
    return line


# -- table rows -----------------------------------------------------------------------------

_ID_CHARS = 8
_Column = tuple[str, int, SortKey | None]
"""(header, width, sort key) of one of each run's columns."""
_COLUMNS: list[_Column] = [
    ("outcome", 8, SortKey.OUTCOME),
    ("turn", 4, SortKey.TURNS),
    ("dep", 3, SortKey.DEPTH),
    ("bt", 2, SortKey.BACKTRACKS),
    ("rf", 2, SortKey.REFLECTIONS),
    ("tokens", 6, SortKey.TOKENS),
    ("chars", 6, SortKey.THOUGHT),
]
"""Each column of the table of one run."""
_MARK: _Column = ("mark", 2, SortKey.OUTCOME)
"""The outcome as a sign; its header is the run's letter."""
_COMPARE_TIERS: list[list[_Column]] = [
    [c for c in _COLUMNS if c[0] in ("outcome", "turn", "bt", "chars")],
    [_MARK, *(c for c in _COLUMNS if c[0] in ("turn", "chars"))],
    [_MARK, *(c for c in _COLUMNS if c[0] == "chars")],
    [_MARK],
]
"""The column sets each run gets when runs are compared, widest first: two runs fit the
first in 80 columns, three the second, four the third; many runs only show outcomes."""
MIN_PROBLEM_CHARS = 12
"""The problem column is never squeezed below this while a narrower column set fits."""


def _columns(width: int, runs: int) -> list[_Column]:
    """Each run's columns: all for one run; for several, the widest set that leaves the
    problem `MIN_PROBLEM_CHARS`, so a comparison of any number of runs fits `width`."""
    if runs == 1:
        return _COLUMNS
    for columns in _COMPARE_TIERS:
        if _problem_width(width, runs, columns) >= MIN_PROBLEM_CHARS:
            return columns
    return _COMPARE_TIERS[-1]


def _problem_width(width: int, runs: int, columns: list[_Column]) -> int:
    fixed = _ID_CHARS + 1 + runs * sum(w + 1 for _, w, _ in columns)
    return width - fixed - 1


def _short_number(value: int) -> str:
    """At most 6 characters: 12,345 or 123.4k or 12.3M."""
    if value < 100_000:
        return f"{value:,}"
    if value < 10_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def _cell(row: ListedSession, header: str) -> str:
    value = {
        "turn": row.turns,
        "dep": row.depth,
        "bt": row.backtracks,
        "rf": row.reflections,
        "tokens": row.tokens,
        "chars": row.thought_chars,
    }[header]
    return _short_number(value)


def _fit(words: str, width: int) -> str:
    words = " ".join(words.split())
    return words if len(words) <= width else words[: width - 1] + "…"


def row_text(pair: SessionPair, width: int, runs: int) -> Text:
    """One table line: id, problem (cut to fit `width`), then each run's columns."""
    columns = _columns(width, runs)
    problem = max(8, _problem_width(width, runs, columns))
    line = Text(no_wrap=True, overflow="crop")
    line.append(pair.session_id[:_ID_CHARS].ljust(_ID_CHARS) + " ", style="dim")
    line.append(_fit(pair.problem, problem).ljust(problem))
    for side in range(runs):
        row = pair.side(side)
        for header, cells, _ in columns:
            line.append(" ")
            if header in ("outcome", "mark"):
                outcome = outcome_cell(row) if header == "outcome" else outcome_mark(row)
                outcome.pad_right(cells - outcome.cell_len)
                line.append_text(outcome)
            elif row is None:
                line.append("—".rjust(cells), style="dim")
            else:
                line.append(_cell(row, header).rjust(cells))
    return line


def header_text(width: int, runs: int, sort: SortKey, *, descending: bool, side: int) -> Text:
    """The table's header line, with ↑ or ↓ on the sorted column of the run sorted by."""
    columns = _columns(width, runs)
    problem = max(8, _problem_width(width, runs, columns))
    line = Text(no_wrap=True, overflow="crop", style="bold")
    line.append("session".ljust(_ID_CHARS) + " ")
    words = "problem"
    if runs > 1:
        words += "   (" + " | ".join(run_label(run) for run in range(runs)) + ")"
    line.append(_fit(words, problem).ljust(problem))
    arrow = "↓" if descending else "↑"
    for run in range(runs):
        for header, cells, key in columns:
            sorted_here = key is sort and run == side
            if header == "mark":  # the run's letter, then the arrow
                name = run_label(run) + (arrow if sorted_here else "")
                line.append(" ")
                line.append(name.ljust(cells), style="reverse" if sorted_here else "")
                continue
            name = arrow + header[: cells - 1] if sorted_here else header
            line.append(" ")
            line.append(name[:cells].rjust(cells), style="reverse" if sorted_here else "")
    return line
