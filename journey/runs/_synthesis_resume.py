"""Resume bookkeeping for a synthesis run: what to do with each problem, and the logs
and index made safe to go on with.

`plan_sessions` sorts the problems into done (skipped), ended but not indexed,
unfinished and fresh; the helpers below repair what a killed run left (a half-written
last line) and set aside the logs that start again (`events.broken.jsonl`,
`events.error-N.jsonl`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from journey.problems.dataset import ProblemRecord
from journey.protocols import Outcome, SessionEnded, SessionEvent
from journey.runs.rundir import RunDirectory, read_event_log
from journey.runs.synthesis_report import SynthesisReport, SynthesisTally

__all__ = [
    "SessionPlan",
    "keep_error_log",
    "plan_sessions",
    "read_repaired",
    "repair_index",
    "restart",
    "set_aside",
]

logger = logging.getLogger(__name__)


@dataclass
class SessionPlan:
    """What to do with one problem."""

    record: ProblemRecord
    events: list[SessionEvent] = field(default_factory=list)
    """Logged events to restore from; empty for a fresh start."""
    retry: bool = False
    """The session ended as `model_error`: it starts again, its old log set aside."""


def plan_sessions(
    run: RunDirectory,
    problems: Sequence[ProblemRecord],
    report: SynthesisReport,
    tally: SynthesisTally,
    done: list[tuple[ProblemRecord, list[SessionEvent]]],
    *,
    retry_errors: bool,
) -> list[SessionPlan]:
    """Sort problems into done (skipped), ended-but-unindexed, unfinished and fresh.

    A session indexed as `model_error` is not done while errors are retried: its log
    decides, as for an unindexed one, except that a log ending in an error starts
    again (a log cut short is a retry that was interrupted: it is resumed).
    """
    indexed = {s.session_id: s for s in run.summaries()}
    plans: list[SessionPlan] = []
    for record in problems:
        summary = indexed.get(record.session_id)
        errored = summary is not None and summary.outcome == Outcome.ERROR
        if summary is not None and not (errored and retry_errors):
            report.skipped += 1
            tally.count(summary)
            continue
        events = read_repaired(run, record, report)
        ended = events[-1] if events and isinstance(events[-1], SessionEnded) else None
        if ended is not None and ended.outcome is Outcome.ERROR and retry_errors:
            plans.append(SessionPlan(record, retry=True))
        elif ended is not None:
            done.append((record, events))
        else:  # no log: an indexed error whose log a stopped run had set aside already
            plans.append(SessionPlan(record, events, retry=errored and not events))
    return plans


def restart(run: RunDirectory, record: ProblemRecord, report: SynthesisReport, why: str) -> None:
    """Set a session's log aside (as `events.broken.jsonl`) so it starts again."""
    line = f"{record.session_id}: {why}; started again"
    report.problems.append(line)
    report.restarted += 1
    logger.warning(line)
    set_aside(run.session_dir(record.session_id) / "events.jsonl")


def read_repaired(
    run: RunDirectory, record: ProblemRecord, report: SynthesisReport
) -> list[SessionEvent]:
    """A session's logged events, with the file made safe to append to.

    A last line cut mid-write is removed (a complete last line missing its newline gets
    one); a log damaged elsewhere is set aside, and the session starts again.
    """
    path = run.session_dir(record.session_id) / "events.jsonl"
    if not path.exists():
        return []
    log = read_event_log(path)
    if log.bad_lines:
        restart(run, record, report, f"unreadable lines {log.bad_lines} in its log")
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            if log.truncated:
                file.truncate(data.rfind(b"\n") + 1)
            else:
                file.seek(0, os.SEEK_END)
                file.write(b"\n")
    return log.events


def repair_index(path: Path) -> None:
    """Cut a half-written last line off `sessions.jsonl`, so the next line starts clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)


def set_aside(path: Path) -> None:
    """Keep a log that cannot go on as `events.broken.jsonl`, beside where it was."""
    if path.exists():
        os.replace(path, path.with_name("events.broken.jsonl"))


def keep_error_log(run: RunDirectory, session_id: str) -> None:
    """Set a `model_error` session's log aside as `events.error-N.jsonl` (N = 1, 2...,
    one per failed try) so that it runs again from the start. Its index line stays until
    the new one supersedes it."""
    folder = run.session_dir(session_id)
    log = folder / "events.jsonl"
    if log.exists():
        number = 1
        while (folder / f"events.error-{number}.jsonl").exists():
            number += 1
        os.replace(log, folder / f"events.error-{number}.jsonl")
    (folder / "shortcut.md").unlink(missing_ok=True)
