"""The browser's detail pane: a tab per view of the highlighted session (tree,
transcript, conversation), one column per run compared, each read from disk on first
use and kept in a small cache so going back and forth reads nothing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane

from journey.view.browse.detail import SessionDetail, load_detail
from journey.view.browse.model import RunIndex, SessionPair
from journey.view.browse.panes import (
    conversation_pane,
    detail_heading,
    transcript_pane,
    tree_pane,
)

__all__ = ["DETAIL_CACHE", "PANES", "DetailTabs"]

PANES = ("tree", "transcript", "conversation")
DETAIL_CACHE = 32
"""Sessions whose detail is kept, so going back and forth reads nothing."""


class DetailTabs(TabbedContent):
    """A tab per pane, each a heading and a scrolled body per run, filled by `show`."""

    def __init__(
        self, runs: Sequence[RunIndex], names: Sequence[str], *, id: str | None = None
    ) -> None:
        """
        Args:
            runs: One run, or several side by side.
            names: What each run's headings call it.
            id: The widget's id.
        """
        super().__init__(id=id, initial=PANES[0])
        self.runs = list(runs)
        self.names = list(names)
        self._details: OrderedDict[tuple[int, str], SessionDetail] = OrderedDict()
        self._shown_pair: SessionPair | None = None
        for pane in PANES:
            sides = [
                Vertical(
                    Static(id=f"{pane}-{side}-heading", classes="heading"),
                    VerticalScroll(Static(id=f"{pane}-{side}-body"), id=f"{pane}-{side}-scroll"),
                    classes="side",
                )
                for side in range(len(self.runs))
            ]
            self.compose_add_child(TabPane(pane, Horizontal(*sides), id=pane))

    def detail(self, side: int, pair: SessionPair) -> SessionDetail | None:
        """The pair's session in run `side`, read on first use and cached."""
        row = pair.side(side)
        if row is None:
            return None
        key = (side, row.session_id)
        if key in self._details:
            self._details.move_to_end(key)
            return self._details[key]
        found = self._details[key] = load_detail(self.runs[side], row)
        if len(self._details) > DETAIL_CACHE:
            self._details.popitem(last=False)
        return found

    def show(self, pair: SessionPair | None) -> None:
        """Fill the panes with the pair's sessions, or say that no session matches."""
        if pair is self._shown_pair and pair is not None:
            return
        self._shown_pair = pair
        for side, name in enumerate(self.names):
            found = self.detail(side, pair) if pair is not None else None
            for pane, draw in zip(
                PANES, (tree_pane, transcript_pane, conversation_pane), strict=True
            ):
                heading = self.query_one(f"#{pane}-{side}-heading", Static)
                body = self.query_one(f"#{pane}-{side}-body", Static)
                if pair is None:
                    heading.update(Text("no session matches the filter", style="dim"))
                    body.update("")
                    continue
                heading.update(detail_heading(found, name))
                body.update(draw(found) if found is not None else "")
                self.query_one(f"#{pane}-{side}-scroll", VerticalScroll).scroll_home(animate=False)
