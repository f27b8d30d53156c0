"""A finished session read back from its run for export, or the reason it is skipped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from journey.protocols import (
    CriticVerdictGiven,
    ProblemPosed,
    RolloutTally,
    SessionEnded,
    SessionEvent,
)
from journey.runs.rundir import SessionSummary, read_event_log
from journey.sessions.tree import ReasoningTree, TreeNode

__all__ = ["FinishedSession", "SessionSkipped", "load_session"]


@dataclass(frozen=True)
class FinishedSession:
    """A finished session's parts, read back from its run."""

    summary: SessionSummary
    folder: Path
    events: list[SessionEvent]
    tree: ReasoningTree
    ended: SessionEnded
    posed: ProblemPosed | None
    rollouts: Mapping[int, RolloutTally] = field(default_factory=dict)
    """Rollout estimates of its steps, by node id: its rollout critic's, or `journey
    label`'s (which win)."""
    rollout_judge: str | None = None
    """The judge that made them."""

    @property
    def answer_path(self) -> list[TreeNode]:
        """The steps from the problem to the final answer; [] when the session has none."""
        final = self.ended.final_node_id
        return [] if final is None else self.tree.path(final)[1:]


class SessionSkipped(Exception):
    """A session is not exported; the message is the reason counted on the card."""


def load_session(folder: Path, summary: SessionSummary) -> FinishedSession:
    """Read a finished session's event log and tree back from its folder.

    Args:
        folder: The session's folder in its run.
        summary: Its line in the run's index.

    Raises:
        SessionSkipped: no event log, no `session_ended`, a tree missing or unreadable.
    """
    events_path = folder / "events.jsonl"
    if not events_path.is_file():
        raise SessionSkipped("no event log")
    log = read_event_log(events_path)
    ended = log.events[-1] if log.events else None
    if not isinstance(ended, SessionEnded):
        raise SessionSkipped("no session_ended")
    posed = next((e for e in log.events if isinstance(e, ProblemPosed)), None)
    try:
        tree = ReasoningTree.load(folder / "tree.json")
    except FileNotFoundError:
        raise SessionSkipped("no tree.json") from None
    except (ValidationError, ValueError, OSError):
        raise SessionSkipped("unreadable tree.json") from None
    judge = posed.models.get("critic") if posed is not None else None
    tallies = {
        e.node_id: e.rollouts
        for e in log.events
        if isinstance(e, CriticVerdictGiven) and e.rollouts is not None
    }
    return FinishedSession(
        summary,
        folder,
        log.events,
        tree,
        ended,
        posed,
        # A session judged by a rollout critic carries its tallies as `journey label`'s.
        rollouts=tallies,
        rollout_judge=judge if tallies else None,
    )
