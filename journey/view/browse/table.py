"""The session table: a virtual list that draws only the rows on screen.

Textual's `DataTable` builds and measures every cell up front, which takes many seconds
for 10,000 rows; this widget keeps the rows as a list of `SessionPair` and formats a row
only when it is drawn, so filling it with a whole run costs nothing and sorting or
filtering only swaps the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from journey.view.browse.model import SessionPair

__all__ = ["SessionTable"]


class SessionTable(ScrollView, can_focus=True):
    """Rows of `SessionPair`s with a cursor; `format_row` turns a pair into a line of text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("enter", "select", "open", show=False),
    ]
    DEFAULT_CSS = """
    SessionTable { background: $surface; overflow-x: hidden; }
    SessionTable > .session-table--cursor { background: $accent; color: $text; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"session-table--cursor"}

    cursor = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Selected(Message):
        """Enter (or a click) on a row."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, format_row: Callable[[SessionPair, int], Text], **kwargs: object) -> None:
        """
        Args:
            format_row: Makes the line of one pair for a given width.
            **kwargs: Passed to `ScrollView` (id, classes).
        """
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.format_row = format_row
        self.rows: list[SessionPair] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def set_rows(self, rows: Sequence[SessionPair], cursor: int = 0) -> None:
        """Show these rows; the cursor goes to `cursor` (clamped)."""
        self.rows = list(rows)
        self.virtual_size = Size(1, len(self.rows))
        self.cursor = max(0, min(cursor, len(self.rows) - 1))
        self.refresh()

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.scroll_to_region(Region(0, new, 1, 1), animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(new))

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        text = self.format_row(self.rows[index], width)
        style = self.rich_style
        if index == self.cursor:
            style = style + self.get_component_rich_style("session-table--cursor")
        segments = list(text.render(self.app.console, end=""))
        line = Strip(Segment.apply_style(segments, style))
        return line.adjust_cell_length(width, style)

    def on_resize(self) -> None:
        self.virtual_size = Size(1, len(self.rows))

    def on_click(self, event: events.Click) -> None:
        index = round(self.scroll_offset.y) + event.y
        if 0 <= index < len(self.rows):
            if index == self.cursor:
                self.post_message(self.Selected(index))
            self.cursor = index

    def action_move(self, step: int) -> None:
        self.cursor += step

    def action_page(self, pages: int) -> None:
        self.cursor += pages * max(1, self.size.height - 1)

    def action_jump(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self.rows) - 1

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self.cursor))
