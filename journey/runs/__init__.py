"""Runs: run directories (event logs, trees, the index of finished sessions), the
synthesis job that fills them, their stats, and merging; the manifest, the job loop and
the request accounts (cache, prices, budget) every resumable job shares."""

from journey.runs.manifest import Manifest, ManifestFile, SettingChange, read_manifest
from journey.runs.merge import MergeReport, merge_runs
from journey.runs.request_accounts import RequestAccounts, SpendReport, SpendSettings
from journey.runs.response_cache import CacheSettings
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
from journey.runs.spend import RunBudget
from journey.runs.synthesis import (
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
)

__all__ = [
    "CacheSettings",
    "EventLog",
    "EventLogWriter",
    "Manifest",
    "ManifestFile",
    "MergeReport",
    "RequestAccounts",
    "RunBudget",
    "RunDirectory",
    "SessionSummary",
    "SettingChange",
    "SmoothingRecord",
    "SmoothingTally",
    "SpendReport",
    "SpendSettings",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
    "merge_runs",
    "read_event_log",
    "read_manifest",
    "smooth_run",
    "smoothing_records",
]
