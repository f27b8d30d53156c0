"""Synthesis: sessions of the three strategies, reasoning trees, long thoughts, run
directories, dataset runs, and the training sets exported from them. Never trains."""

from journey.synthesis.beam import BeamSearchSession
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
from journey.synthesis.export import (
    EmptyExportError,
    ExportCard,
    ExportFormat,
    ExportOptions,
    export_runs,
)
from journey.synthesis.long_thought import LongThoughtOptions, write_long_thought
from journey.synthesis.merge import MergeReport, merge_runs
from journey.synthesis.propose_critique import ProposeCritiqueSession
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
from journey.synthesis.smoothing import FaithfulnessChecker, Smoother, SmoothingResult, smooth_run
from journey.synthesis.strategies import STRATEGIES, strategy_session
from journey.synthesis.transcript import LongThoughtWriter, first_person
from journey.synthesis.tree import IllegalBacktrackError, NodeLabel, ReasoningTree, TreeNode
from journey.synthesis.tree_walk import TreeWalkWriter

__all__ = [
    "STRATEGIES",
    "BeamSearchSession",
    "DatasetIssue",
    "DebateLimits",
    "DebateResult",
    "DebateSession",
    "EmptyExportError",
    "EventLog",
    "EventLogWriter",
    "EventSink",
    "ExportCard",
    "ExportFormat",
    "ExportOptions",
    "FaithfulnessChecker",
    "IllegalBacktrackError",
    "LongThoughtOptions",
    "LongThoughtWriter",
    "MergeReport",
    "NodeLabel",
    "ProblemDataset",
    "ProblemRecord",
    "ProposeCritiqueSession",
    "ReasoningTree",
    "RestoreError",
    "RunDirectory",
    "SessionSummary",
    "Shard",
    "Smoother",
    "SmoothingResult",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
    "TreeNode",
    "TreeWalkWriter",
    "export_runs",
    "first_person",
    "load_problems",
    "merge_runs",
    "read_event_log",
    "render_synthesis_report",
    "session_id_for",
    "smooth_run",
    "strategy_session",
    "write_long_thought",
]
