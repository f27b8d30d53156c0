"""Runs: run directories (event logs, trees, the index of finished sessions), the
synthesis job that fills them, their stats, and merging."""

from journey.runs.merge import MergeReport, merge_runs
from journey.runs.rundir import (
    EventLog,
    EventLogWriter,
    RunDirectory,
    SessionSummary,
    read_event_log,
)
from journey.runs.smoothing_job import (
    SmoothingRecord,
    SmoothingTally,
    smooth_run,
    smoothing_records,
)
from journey.runs.synthesis import (
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
)

__all__ = [
    "EventLog",
    "EventLogWriter",
    "MergeReport",
    "RunDirectory",
    "SessionSummary",
    "SmoothingRecord",
    "SmoothingTally",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
    "merge_runs",
    "read_event_log",
    "smooth_run",
    "smoothing_records",
]
