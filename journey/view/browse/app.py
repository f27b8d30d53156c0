"""The Textual app of `journey browse`: a session table over a detail pane, all by keys.

The table holds one row per problem: one run's session, or the sessions of several runs
side by side (iterations 1..4 of a run, say; matched by session id, a hash of the
problem), each run named by a letter. Filters and sorting look at one run (`a` moves
on to the next in a comparison). The detail pane (`detail_tabs`: tree,
transcript, conversation) is read from disk only when a row is highlighted, after a
short pause so scrolling through the table reads nothing; the run rates and transcript
searches run in worker threads so a 10,000-session run never freezes the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TabbedContent
from textual.worker import get_current_worker

from journey.errors import ConfigError
from journey.runs.stats import RunStats
from journey.view.browse.detail_tabs import PANES, DetailTabs
from journey.view.browse.help import HelpScreen
from journey.view.browse.model import (
    MAX_RUNS,
    OutcomeClass,
    RunIndex,
    SessionFilter,
    SessionPair,
    SortKey,
    pair_runs,
    run_label,
    sort_pairs,
    visible_pairs,
)
from journey.view.browse.panes import header_text, row_text, stats_line
from journey.view.browse.search import TranscriptSearch, compile_search
from journey.view.browse.table import SessionTable
from journey.view.render import run_names

__all__ = ["PANES", "BrowseApp"]

_W = TypeVar("_W", bound=Widget)

LAYOUTS = ("split", "table", "detail")
"""What `z` cycles through: table over detail, the table alone, the detail alone."""
DETAIL_DELAY = 0.15
"""Seconds a row must stay highlighted before its session is read from disk."""
OUTCOME_CYCLE: tuple[OutcomeClass | None, ...] = (None, *OutcomeClass)


class BrowseApp(App[None]):
    """Browse one run, or several side by side."""

    TITLE = "journey browse"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #rates { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    #status { height: 1; background: $boost; }
    #header { height: 1; }
    #sessions { height: 1fr; }
    #detail { height: 1fr; }
    #search { dock: bottom; display: none; }
    .side { width: 1fr; margin-right: 1; }
    .side:last-of-type { margin-right: 0; }
    .heading { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    Screen.table-only #detail { display: none; }
    Screen.detail-only #sessions, Screen.detail-only #header { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("s", "sort", "sort"),
        Binding("S", "reverse", "reverse", show=False),
        Binding("o", "outcome", "outcome"),
        Binding("r", "stop_reason", "stop", show=False),
        Binding("b", "backtracks(1)", "back+", show=False),
        Binding("B", "backtracks(-1)", "back-", show=False),
        Binding("slash", "search", "search", key_display="/"),
        Binding("x", "clear_filters", "clear", show=False),
        Binding("a", "switch_side", "next run", show=False),
        Binding("1", "pane('tree')", "tree"),
        Binding("2", "pane('transcript')", "text"),
        Binding("3", "pane('conversation')", "talk"),
        Binding("z", "zoom", "zoom"),
        Binding("escape", "layout('split')", "back", show=False),
    ]

    def __init__(
        self,
        runs: Sequence[RunIndex],
        *,
        where: SessionFilter | None = None,
        sort: SortKey = SortKey.INDEX,
        descending: bool = False,
        side: int = 0,
    ) -> None:
        """
        Args:
            runs: One run, or up to `MAX_RUNS` to compare (from `load_run`).
            where: The filter to start with.
            sort: The column to sort by first.
            descending: Sort from the largest value.
            side: The run (0-based) that filters and sorting look at first.
        """
        super().__init__()
        if not 1 <= len(runs) <= MAX_RUNS:
            raise ValueError(f"BrowseApp takes 1 to {MAX_RUNS} runs, got {len(runs)}")
        if not 0 <= side < len(runs):
            raise ValueError(f"side must be 0 to {len(runs) - 1} (a run's index), got {side}")
        self.runs = list(runs)
        self.names = run_names([str(run.root) for run in self.runs])
        if len(self.runs) > 1:  # the letters of the table's header, on rates and panes
            self.names = [f"{run_label(i)} {name}" for i, name in enumerate(self.names)]
        self.pairs = pair_runs(*(run.rows for run in self.runs))
        self.where = where or SessionFilter()
        self.sort_key = sort
        self.descending = descending
        self.side = side
        self.view_layout = "split"
        self.shown: list[SessionPair] = []
        self.stats: list[RunStats | None] = [None] * len(self.runs)
        self.searches = [TranscriptSearch(run) for run in self.runs]
        self.matches: frozenset[str] | None = None
        self.searching: str | None = None
        self._pending_timer: Timer | None = None

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="rates")
        yield Static(id="status")
        yield Static(id="header")
        yield SessionTable(self._row_text, id="sessions")
        yield DetailTabs(self.runs, self.names, id="detail")
        yield Input(placeholder="search transcripts: a word or a regex; enter", id="search")
        yield Footer(compact=True)

    def _find(self, selector: str, kind: type[_W]) -> _W:
        """A widget of the browser's own screen, whichever screen (help) is on top."""
        return self.screen_stack[0].query_one(selector, kind)

    def on_unmount(self) -> None:
        if self._pending_timer is not None:
            self._pending_timer.stop()

    def on_mount(self) -> None:
        self._show_rates()
        self.refresh_table()
        self._find("#sessions", SessionTable).focus()
        # The rates read every transcript: begin once the first screen is drawn, so the
        # worker threads do not slow it down.
        self.call_after_refresh(self._start_rates)
        if self.where.search:
            self._start_search(self.where.search)

    # -- the table --------------------------------------------------------------------------

    def _row_text(self, pair: SessionPair, width: int) -> Text:
        return row_text(pair, width, len(self.runs))

    def _show_header(self) -> None:
        header = self._find("#header", Static)
        table = self._find("#sessions", SessionTable)
        width = table.scrollable_content_region.width or self.size.width
        header.update(
            header_text(
                width, len(self.runs), self.sort_key, descending=self.descending, side=self.side
            )
        )

    def on_resize(self) -> None:
        self._show_header()

    def refresh_table(self) -> None:
        """Filter and sort the pairs again and refill the table, keeping the selection."""
        table = self._find("#sessions", SessionTable)
        selected = self.selected_pair()
        matches = self.matches if self.where.search else None
        if self.where.search and matches is None:
            shown: list[SessionPair] = []  # the search is still running
        else:
            shown = visible_pairs(self.pairs, self.where, side=self.side, matches=matches)
        self.shown = sort_pairs(shown, self.sort_key, descending=self.descending, side=self.side)
        at = self.shown.index(selected) if selected is not None and selected in self.shown else 0
        table.set_rows(self.shown, cursor=at)
        self._show_header()
        self._show_status()
        self._schedule_detail()

    def table_rows(self) -> int:
        """How many rows the table shows (for tests and the benchmark)."""
        return self._find("#sessions", SessionTable).row_count

    def selected_pair(self) -> SessionPair | None:
        if not self.shown:
            return None
        row = self._find("#sessions", SessionTable).cursor
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def _show_status(self) -> None:
        arrow = "↓" if self.descending else "↑"
        status = Text(f" {len(self.shown):,} of {len(self.pairs):,}", style="bold")
        status.append(f" · filter: {self.where.describe()}")
        status.append(f" · sort: {self.sort_key.value} {arrow}")
        if len(self.runs) > 1:
            status.append(f" · by run {run_label(self.side)}", style="bold")
        if self.searching is not None:
            status.append(f" · {self.searching}", style="yellow")
        bad = sum(len(run.bad_lines) for run in self.runs)
        if bad:
            status.append(f" · {bad} bad index lines skipped", style="yellow")
        self._find("#status", Static).update(status)

    def _show_rates(self) -> None:
        lines = [
            stats_line(name, stats) for name, stats in zip(self.names, self.stats, strict=True)
        ]
        self._find("#rates", Static).update(Text("\n").join(lines))

    def _start_rates(self) -> None:
        for side in range(len(self.runs)):
            self._count_rates(side)

    @work(thread=True, group="rates")
    def _count_rates(self, side: int) -> None:
        stats = self.runs[side].stats()  # reads every transcript: off the UI thread
        self.stats[side] = stats
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._show_rates)

    # -- the detail pane --------------------------------------------------------------------

    def on_session_table_highlighted(self) -> None:
        self._schedule_detail()

    def on_session_table_selected(self) -> None:
        self.action_layout("detail")

    def _schedule_detail(self) -> None:
        if self._pending_timer is not None:
            self._pending_timer.stop()
        self._pending_timer = self.set_timer(DETAIL_DELAY, self.show_detail)

    @property
    def detail_pending(self) -> bool:
        """Whether the highlighted session's panes still wait for the pause to end."""
        return self._pending_timer is not None

    def show_detail(self) -> None:
        """Fill the panes with the highlighted session (now, not after the pause)."""
        self._pending_timer = None
        if not self.screen_stack:
            return  # the app is closing
        self._find("#detail", DetailTabs).show(self.selected_pair())

    # -- actions ----------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_sort(self) -> None:
        keys = list(SortKey)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.descending = self.sort_key is not SortKey.INDEX  # biggest first, but for index
        self.refresh_table()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.refresh_table()

    def action_outcome(self) -> None:
        at = OUTCOME_CYCLE.index(self.where.outcome)
        self._filter(outcome=OUTCOME_CYCLE[(at + 1) % len(OUTCOME_CYCLE)])

    def action_stop_reason(self) -> None:
        reasons = sorted(
            {r for p in self.pairs if (row := p.side(self.side)) and (r := row.stop_reason)}
        )
        cycle: list[str | None] = [None, *reasons]
        at = cycle.index(self.where.stop_reason) if self.where.stop_reason in cycle else 0
        self._filter(stop_reason=cycle[(at + 1) % len(cycle)])

    def action_backtracks(self, step: int) -> None:
        self._filter(min_backtracks=max(0, self.where.min_backtracks + step))

    def action_clear_filters(self) -> None:
        self.workers.cancel_group(self, "search")
        self.searching = None
        self.where = SessionFilter()
        self.matches = None
        self.refresh_table()

    def action_switch_side(self) -> None:
        """Filter and sort by the next run (A, B, C, then A again)."""
        if len(self.runs) > 1:
            self.side = (self.side + 1) % len(self.runs)
            if self.where.search:
                self._start_search(self.where.search)
            self.refresh_table()

    def action_pane(self, pane: str) -> None:
        self._find("#detail", TabbedContent).active = pane
        if self.view_layout == "table":
            self.action_layout("split")

    def action_zoom(self) -> None:
        self.action_layout(LAYOUTS[(LAYOUTS.index(self.view_layout) + 1) % len(LAYOUTS)])

    def action_layout(self, layout: str) -> None:
        search = self._find("#search", Input)
        if search.display:
            search.display = False
            self._find("#sessions", SessionTable).focus()
            return
        self.view_layout = layout
        self.screen.set_class(layout == "table", "table-only")
        self.screen.set_class(layout == "detail", "detail-only")
        if layout == "detail":
            self.show_detail()
            pane = self._find("#detail", TabbedContent).active
            self._find(f"#{pane}-0-scroll", VerticalScroll).focus()
        else:
            self._find("#sessions", SessionTable).focus()

    def action_search(self) -> None:
        search = self._find("#search", Input)
        search.value = self.where.search or ""
        search.display = True
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self._find("#sessions", SessionTable).focus()
        text = event.value.strip()
        if not text:
            self.workers.cancel_group(self, "search")
            self.searching = None
            self._filter(search=None)
            return
        try:
            compile_search(text)
        except ConfigError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._filter(search=text)
        self._start_search(text)

    def _filter(self, **change: Any) -> None:
        self.where = replace(self.where, **change)
        self.refresh_table()

    # -- transcript search ------------------------------------------------------------------

    def _start_search(self, text: str) -> None:
        self.matches = None
        self.searching = f"searching /{text}/…"
        self._search_transcripts(text, self.side)

    @work(thread=True, exclusive=True, group="search")
    def _search_transcripts(self, text: str, side: int) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self._search_progress, text, done, total)

        found = self.searches[side].matching(
            text, progress=progress, cancelled=lambda: worker.is_cancelled
        )
        if found is not None and not worker.is_cancelled:
            self.call_from_thread(self._search_done, text, side, found)

    def _search_progress(self, text: str, done: int, total: int) -> None:
        if self.where.search == text:
            self.searching = f"searching /{text}/ {done:,}/{total:,}"
            self._show_status()

    def _search_done(self, text: str, side: int, found: frozenset[str]) -> None:
        if self.where.search != text or self.side != side:
            return  # a newer search or the other run took over
        self.matches = found
        self.searching = None
        self.refresh_table()
