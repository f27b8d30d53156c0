"""The browser's help screen: every key and what it does (`?`)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen"]

_HELP = """\
[b]journey browse[/b] — every key

  ↑ ↓ PgUp PgDn   move in the table      enter   show the session (zoom)
  s / S           next sort column / reverse the order
  o               outcome: all, correct, incorrect, unverified, unfinished
  r               stop reason: all, then each one the run has
  b / B           at least one more / one fewer backtrack
  /               search the transcripts: a word (wait, hmm) or a regex
  x               clear every filter
  a               several runs: filter and sort by the next run
  1 2 3           tree, transcript, conversation pane
  z               table and detail / table only / detail only
  tab             move the focus (scroll a pane with the arrows)
  escape          back to table and detail
  ?               this help          q   quit
"""


class HelpScreen(ModalScreen[None]):
    """The list of keys; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 78; padding: 0 1; border: round $accent;
                          background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(_HELP, id="help")
