"""One session as the panes show it, read from disk when it is selected and not before."""

from __future__ import annotations

from dataclasses import dataclass

from journey.protocols import SessionEnded
from journey.runs.rundir import EventLog, read_event_log
from journey.runs.stats import ListedSession
from journey.sessions.tree import ReasoningTree
from journey.view.browse.model import RunIndex
from journey.view.replay import tree_from_events

__all__ = ["SessionDetail", "load_detail"]


@dataclass(frozen=True)
class SessionDetail:
    """What the panes show of one session: read when it is selected, not before."""

    row: ListedSession
    log: EventLog | None
    """None when the session has no event log."""
    tree: ReasoningTree | None
    tree_error: str | None
    """Why there is no tree (e.g. a damaged log without tree.json)."""
    transcript: str | None

    @property
    def final_node_id(self) -> int | None:
        if self.log is None or not self.log.finished:
            return None
        ended = self.log.events[-1]
        return ended.final_node_id if isinstance(ended, SessionEnded) else None


def load_detail(run: RunIndex, row: ListedSession) -> SessionDetail:
    """Read one session's event log, tree and transcript (the tree from the log if needed)."""
    folder = run.session_dir(row.session_id)
    events = folder / "events.jsonl"
    log = read_event_log(events) if events.is_file() else None
    tree: ReasoningTree | None = None
    error: str | None = None
    tree_path = folder / "tree.json"
    try:
        if tree_path.is_file() and (log is None or log.finished):
            tree = ReasoningTree.load(tree_path)
        elif log is not None:
            tree = tree_from_events(log.events)
        else:
            error = "no tree.json and no event log"
    except (ValueError, OSError) as failure:
        error = str(failure)
    transcript = run.contents().transcript(row.session_id)
    return SessionDetail(row, log, tree, error, transcript)
