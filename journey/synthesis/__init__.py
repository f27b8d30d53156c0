"""Synthesis: debate sessions, reasoning trees, long-thought transcripts and run directories."""

from journey.synthesis.debate import (
    DebateLimits,
    DebateResult,
    DebateSession,
    EventSink,
    session_id_for,
)
from journey.synthesis.rundir import (
    EventLog,
    EventLogWriter,
    RunDirectory,
    SessionSummary,
    read_event_log,
)
from journey.synthesis.transcript import LongThoughtWriter, first_person
from journey.synthesis.tree import IllegalBacktrackError, NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "DebateLimits",
    "DebateResult",
    "DebateSession",
    "EventLog",
    "EventLogWriter",
    "EventSink",
    "IllegalBacktrackError",
    "LongThoughtWriter",
    "NodeLabel",
    "ReasoningTree",
    "RunDirectory",
    "SessionSummary",
    "TreeNode",
    "first_person",
    "read_event_log",
    "session_id_for",
]
