"""Synthesis: debate sessions, reasoning trees, long-thought transcripts and run directories."""

from journey.synthesis.dataset import (
    DatasetIssue,
    ProblemDataset,
    ProblemRecord,
    Shard,
    load_problems,
)
from journey.synthesis.debate import (
    DebateLimits,
    DebateResult,
    DebateSession,
    EventSink,
    RestoreError,
    session_id_for,
)
from journey.synthesis.rundir import (
    EventLog,
    EventLogWriter,
    RunDirectory,
    SessionSummary,
    read_event_log,
)
from journey.synthesis.runner import (
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
    render_synthesis_report,
)
from journey.synthesis.transcript import LongThoughtWriter, first_person
from journey.synthesis.tree import IllegalBacktrackError, NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "DatasetIssue",
    "DebateLimits",
    "DebateResult",
    "DebateSession",
    "EventLog",
    "EventLogWriter",
    "EventSink",
    "IllegalBacktrackError",
    "LongThoughtWriter",
    "NodeLabel",
    "ProblemDataset",
    "ProblemRecord",
    "ReasoningTree",
    "RestoreError",
    "RunDirectory",
    "SessionSummary",
    "Shard",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
    "TreeNode",
    "first_person",
    "load_problems",
    "read_event_log",
    "render_synthesis_report",
    "session_id_for",
]
