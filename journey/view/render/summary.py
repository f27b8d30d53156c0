"""The table that sums up a finished session: outcome, stop reason, counts and tokens."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from journey.protocols import Role, SessionEnded
from journey.view.render._looks import OUTCOME_LOOK

__all__ = ["render_session_summary"]


def render_session_summary(ended: SessionEnded) -> Table:
    """A two-column table summing up a finished session.

    Args:
        ended: The session's last event.

    Returns:
        Outcome, stop reason, final answer, counts, tokens per role and any error.
    """
    table = Table(
        title=Text("Session summary", style="bold"),
        show_header=False,
        box=box.ROUNDED,
        title_justify="left",
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    words, style = OUTCOME_LOOK[ended.outcome]
    table.add_row("outcome", Text(words, style=style))
    table.add_row("stop reason", ended.stop_reason.value.replace("_", " "))
    table.add_row("final answer", Text(ended.final_answer if ended.final_answer else "—"))
    table.add_row("turns", str(ended.turn))
    table.add_row("backtracks", str(ended.backtracks))
    table.add_row("reflections", str(ended.reflections))
    table.add_row("protocol violations", str(ended.violations))
    for role in Role:
        usage = ended.usage.get(role)
        if usage is None:
            continue
        table.add_row(
            f"tokens · {role.value}",
            f"{usage.prompt_tokens:,} prompt / {usage.completion_tokens:,} completion",
        )
    if ended.error:
        table.add_row("error", Text(ended.error, style="red"))
    return table
