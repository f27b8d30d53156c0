"""Looks shared by the renderables: how text is shortened, how an outcome reads."""

from __future__ import annotations

from journey.protocols import Outcome

__all__ = ["OUTCOME_LOOK", "shorten"]

OUTCOME_LOOK: dict[Outcome, tuple[str, str]] = {
    Outcome.SOLVED: ("✓ solved", "bold green"),
    Outcome.FAILED: ("✗ failed", "bold red"),
    Outcome.UNVERIFIED: ("? unverified", "bold yellow"),
    Outcome.ERROR: ("✗ error", "bold red"),
}
"""Words and style of each session outcome."""


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters: whitespace collapsed, cut with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"
