"""Rich renderables for what the rooms below report: session events (`events`), a
session's summary (`summary`) and reasoning tree (`tree`), a run's session listing
(`session_list`) and numbers (`run_stats`).

Rendering is kept apart from the data and the `Console` is injected, so tests render
into a `Console(file=io.StringIO(), width=80)` and compare text.
"""

from journey.view.render.events import SessionRenderer, action_badge, verdict_text
from journey.view.render.run_stats import render_run_stats, run_names
from journey.view.render.session_list import render_session_list
from journey.view.render.summary import render_session_summary
from journey.view.render.tree import render_tree

__all__ = [
    "SessionRenderer",
    "action_badge",
    "render_run_stats",
    "render_session_list",
    "render_session_summary",
    "render_tree",
    "run_names",
    "verdict_text",
]
