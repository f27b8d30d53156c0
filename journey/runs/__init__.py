"""Runs: run directories (event logs, trees, the index of finished sessions), the
synthesis job that fills them, their stats, and merging; the manifest and the job loop
every resumable job shares."""

from journey.runs.manifest import Manifest, ManifestFile, SettingChange, read_manifest
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
    "Manifest",
    "ManifestFile",
    "MergeReport",
    "RunDirectory",
    "SessionSummary",
    "SettingChange",
    "SmoothingRecord",
    "SmoothingTally",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
    "merge_runs",
    "read_event_log",
    "read_manifest",
    "smooth_run",
    "smoothing_records",
]
