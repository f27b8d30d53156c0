"""Run directories: where sessions are written, one event per line, as they happen.

    RUN/
      run.json                  what made the run (command, models, version): its
                                manifest (`journey.runs.manifest`)
      .synth.lock               held by the one process writing the run (`RUN_LOCK`)
      sessions.jsonl            one summary line per finished session (the index; a
                                session run again is indexed again, its last line wins)
      sessions/<id>/events.jsonl  the event log, flushed after every event
      sessions/<id>/tree.json     the reasoning tree
      sessions/<id>/transcript.md the long thought
      sessions/<id>/shortcut.md   the accepted path alone (when there is one)

The event log is appended and flushed event by event, so a crash loses at most
the event in flight; a truncated last line is reported, never fatal. Other
files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from journey.errors import DatasetError
from journey.longthought.transcript import LongThoughtWriter
from journey.longthought.writer import write_long_thought
from journey.protocols import (
    Role,
    SessionEnded,
    SessionEvent,
    TokenUsage,
    event_from_json,
    event_to_json,
)
from journey.runs.files import write_atomic
from journey.runs.manifest import ManifestFile
from journey.sessions.base import SessionResult
from journey.sessions.tree import ReasoningTree

logger = logging.getLogger(__name__)

RUN_LOCK = ".synth.lock"
"""The lock file `journey synth` (and `journey merge`, into it) holds on a run it writes."""


class SessionSummary(BaseModel):
    """One line of `sessions.jsonl`: the record of a finished session, enough to list,
    filter and sort sessions unopened. It is its own row in a listing (`ListedSession`)."""

    session_id: str
    problem: str
    gold_answer: str | None
    outcome: str
    stop_reason: str
    final_answer: str | None
    turns: int
    nodes: int
    max_depth: int
    backtracks: int
    reflections: int
    violations: int
    usage: dict[Role, TokenUsage] = Field(default_factory=dict)
    elapsed: float
    transcript_chars: int

    @classmethod
    def of(cls, result: SessionResult, transcript: str) -> SessionSummary:
        ended = result.ended
        tree = result.tree
        return cls(
            session_id=result.session_id,
            problem=tree.problem,
            gold_answer=tree.gold_answer,
            outcome=ended.outcome.value,
            stop_reason=ended.stop_reason.value,
            final_answer=ended.final_answer,
            turns=ended.turn,
            nodes=len(tree) - 1,
            max_depth=max(node.depth for node in tree),
            backtracks=ended.backtracks,
            reflections=ended.reflections,
            violations=ended.violations,
            usage=ended.usage,
            elapsed=ended.time,
            transcript_chars=len(transcript),
        )

    # -- as a listing shows it (`journey.runs.stats.ListedSession`) --

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens of every role together."""
        return sum(used.total for used in self.usage.values())

    @property
    def depth(self) -> int:
        """The deepest step of the tree (`max_depth`), under a listing's name for it."""
        return self.max_depth

    @property
    def thought_chars(self) -> int:
        """Characters of the long thought (`transcript_chars`), under a listing's name."""
        return self.transcript_chars

    @property
    def truncated(self) -> bool:
        """Never: an indexed session's log ended with `session_ended`."""
        return False

    @property
    def finished(self) -> bool:
        """Always: a session is indexed when it ends."""
        return True


@dataclass(frozen=True)
class EventLog:
    """An event log read back from disk."""

    events: list[SessionEvent]
    truncated: bool
    """The last line was incomplete (the writer was killed mid-line); it was skipped."""
    bad_lines: list[int]
    """Line numbers (1-based) that were complete but did not parse; they were skipped."""

    @property
    def finished(self) -> bool:
        return bool(self.events) and isinstance(self.events[-1], SessionEnded)


def read_event_log(path: Path) -> EventLog:
    """Read an event log, tolerating a crash mid-write."""
    events: list[SessionEvent] = []
    bad: list[int] = []
    truncated = False
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(event_from_json(line))
        except ValidationError:
            # Only the last line may be half-written; anything earlier is damage.
            if number == len(lines):
                truncated = True
            else:
                bad.append(number)
    return EventLog(events=events, truncated=truncated, bad_lines=bad)


class EventLogWriter:
    """Appends events to a session's log, one flushed line each."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, event: SessionEvent) -> None:
        self._file.write(event_to_json(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_index(path: Path) -> dict[str, SessionSummary]:
    """The summaries of a `sessions.jsonl` by session id, in index order.

    A later line for a session supersedes the earlier one and takes its place in the
    order; unreadable lines (one cut short by a crash) are skipped and logged
    (`read_index_lines` says which they were).
    """
    return read_index_lines(path).summaries


@dataclass(frozen=True)
class IndexLines:
    """What a `sessions.jsonl` holds: the summaries by session id, and the lines skipped."""

    summaries: dict[str, SessionSummary]
    """In index order; a later line for a session supersedes the earlier one."""
    bad_lines: list[int]
    """1-based numbers of the lines that did not parse (a line cut short by a crash)."""


def read_index_lines(path: Path, *, warn: bool = True) -> IndexLines:
    """`read_index`, with the numbers of the lines it skipped; `warn` off: they are not
    logged (a caller that shows them itself)."""
    by_id: dict[str, SessionSummary] = {}
    bad: list[int] = []
    if not path.is_file():
        return IndexLines(by_id, bad)
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                summary = SessionSummary.model_validate_json(line)
            except ValidationError:
                bad.append(number)  # the session is re-indexed on resume
                continue
            by_id.pop(summary.session_id, None)
            by_id[summary.session_id] = summary
    if bad and warn:
        logger.warning(
            "%s: %d unreadable line(s) skipped; their sessions count as unfinished until "
            "the run is resumed, which indexes them again",
            path,
            len(bad),
        )
    return IndexLines(by_id, bad)


class RunDirectory:
    """A run on disk. Creating one on an existing directory opens it."""

    def __init__(self, root: Path, *, meta: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(f"run directory {str(self.root)!r} exists and is not a directory")
        self.sessions_root.mkdir(parents=True, exist_ok=True)
        if not self.meta_path.exists():
            write_atomic(self.meta_path, ManifestFile.started(meta or {}).to_json())

    @property
    def meta_path(self) -> Path:
        return self.root / "run.json"

    @property
    def index_path(self) -> Path:
        return self.root / "sessions.jsonl"

    @property
    def sessions_root(self) -> Path:
        return self.root / "sessions"

    def session_dir(self, session_id: str) -> Path:
        return self.sessions_root / session_id

    def event_log(self, session_id: str) -> EventLogWriter:
        return EventLogWriter(self.session_dir(session_id) / "events.jsonl")

    def save(self, result: SessionResult) -> SessionSummary:
        """Write a finished session's tree, long thought and shortcut, then index it.

        The long thought is `write_long_thought`'s, as replay, browse and export show it.
        """
        folder = self.session_dir(result.session_id)
        folder.mkdir(parents=True, exist_ok=True)
        transcript = write_long_thought(result.events, result.tree)
        write_atomic(folder / "tree.json", result.tree.to_json())
        write_atomic(folder / "transcript.md", transcript + "\n")
        shortcut = LongThoughtWriter.shortcut(result.tree, result.ended.final_node_id)
        if shortcut is not None:
            write_atomic(folder / "shortcut.md", shortcut + "\n")
        summary = SessionSummary.of(result, transcript)
        with self.index_path.open("a", encoding="utf-8") as index:
            index.write(summary.model_dump_json() + "\n")
        return summary

    def summaries(self) -> list[SessionSummary]:
        """One summary per indexed session, in index order.

        A session indexed again (a `model_error` session run once more) is superseded:
        its last line wins and takes that line's place in the order.
        """
        return list(read_index(self.index_path).values())

    def compact_index(self) -> int:
        """Drop the superseded lines of `sessions.jsonl` (all but each session's last).

        Call it on a run no one is writing (the runner does, under its lock), so that
        readers that take the lines as they come never meet one session twice. Other
        lines are kept as they are, unreadable ones included.

        Returns:
            How many lines were dropped (0: the file was left untouched).
        """
        if not self.index_path.exists():
            return 0
        lines = self.index_path.read_text(encoding="utf-8").splitlines(keepends=True)
        ids: list[str | None] = []
        for line in lines:
            try:
                ids.append(SessionSummary.model_validate_json(line).session_id)
            except ValidationError:
                ids.append(None)
        last = {sid: number for number, sid in enumerate(ids) if sid is not None}
        kept = [
            line
            for number, (line, sid) in enumerate(zip(lines, ids, strict=True))
            if sid is None or last[sid] == number
        ]
        if len(kept) < len(lines):
            write_atomic(self.index_path, "".join(kept))
        return len(lines) - len(kept)

    def load_tree(self, session_id: str) -> ReasoningTree:
        return ReasoningTree.load(self.session_dir(session_id) / "tree.json")

    def load_events(self, session_id: str) -> EventLog:
        return read_event_log(self.session_dir(session_id) / "events.jsonl")
