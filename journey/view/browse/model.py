"""What `journey browse` shows, without Textual: rows, filters, sorting, matching N runs.

A run is opened from its index (`sessions.jsonl`) alone, so a run of 10,000 sessions
opens in a fraction of a second; event logs, trees and transcripts are read only when a
session is selected (`journey.view.browse.detail`) or a transcript filter asks for them
(`journey.view.browse.search`, which caches what it read). Unfinished sessions (an event
log without an index line) are listed too, from their logs, as `journey replay` lists
them. Nothing here imports Textual, so the model is tested and benchmarked on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from journey.runs.rundir import SessionSummary
from journey.runs.stats import (
    ListedSession,
    RunContents,
    RunStats,
    UnfinishedSession,
    read_run,
    run_stats,
    session_overviews,
)

__all__ = [
    "MAX_RUNS",
    "OutcomeClass",
    "RunIndex",
    "SessionFilter",
    "SessionPair",
    "SortKey",
    "load_run",
    "outcome_class",
    "pair_runs",
    "run_label",
    "sort_pairs",
    "visible_pairs",
]

UNFINISHED = "unfinished"
MAX_RUNS = 26
"""Most runs browsed side by side: each is named by a letter, A to Z."""


class OutcomeClass(StrEnum):
    """The outcome groups the browser filters on."""

    CORRECT = "correct"
    """Solved: a final answer the verifier accepted."""
    INCORRECT = "incorrect"
    """Failed or ended on an error."""
    UNVERIFIED = "unverified"
    """A final answer that nothing could check (no gold answer)."""
    UNFINISHED = "unfinished"
    """An event log without an index line: a crash, or a run still going."""


_OUTCOME_CLASS = {
    "solved": OutcomeClass.CORRECT,
    "failed": OutcomeClass.INCORRECT,
    "error": OutcomeClass.INCORRECT,
    "unverified": OutcomeClass.UNVERIFIED,
    UNFINISHED: OutcomeClass.UNFINISHED,
}


def outcome_class(row: ListedSession) -> OutcomeClass:
    """The outcome group a session's row is filtered on."""
    return _OUTCOME_CLASS.get(row.outcome, OutcomeClass.INCORRECT)


@dataclass
class RunIndex:
    """A run opened for browsing: its rows, and what was skipped reading its index."""

    root: Path
    rows: list[ListedSession]
    """Finished sessions in index order, then unfinished ones by id (`session_overviews`)."""
    summaries: list[SessionSummary]
    unfinished: list[UnfinishedSession]
    bad_lines: list[int] = field(default_factory=list)
    """1-based lines of `sessions.jsonl` that did not parse (skipped)."""

    def contents(self) -> RunContents:
        """The run as `journey.runs.stats` reads it, built from what is loaded."""
        return RunContents(root=self.root, finished=self.summaries, unfinished=self.unfinished)

    def stats(self) -> RunStats:
        """The run's aggregate numbers; reads every transcript (slow on big runs: use a worker)."""
        return run_stats(self.contents())

    def session_dir(self, session_id: str) -> Path:
        return self.root / "sessions" / session_id


def load_run(root: Path) -> RunIndex:
    """Open a run directory for browsing; writes nothing.

    Reads `sessions.jsonl` (a damaged line is skipped and counted, not logged: the
    browser shows it; the last line for a session wins) and the event logs of sessions
    that have no index line (`read_run`).

    Raises:
        DatasetError: `root` is no run directory.
    """
    contents = read_run(root, warn=False)
    rows = session_overviews(contents)
    return RunIndex(contents.root, rows, contents.finished, contents.unfinished, contents.bad_lines)


# -- filtering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions the table shows; the parts combine (a row must pass all)."""

    outcome: OutcomeClass | None = None
    stop_reason: str | None = None
    min_backtracks: int = 0
    search: str | None = None
    """A word or regex the transcript must contain (see `compile_search`)."""

    def passes_index(self, row: ListedSession) -> bool:
        """Everything but the transcript search, which needs the transcript."""
        return (
            (self.outcome is None or outcome_class(row) is self.outcome)
            and (self.stop_reason is None or row.stop_reason == self.stop_reason)
            and row.backtracks >= self.min_backtracks
        )

    def describe(self) -> str:
        parts = []
        if self.outcome is not None:
            parts.append(self.outcome.value)
        if self.stop_reason is not None:
            parts.append(f"stop={self.stop_reason}")
        if self.min_backtracks:
            parts.append(f"backtracks≥{self.min_backtracks}")
        if self.search:
            parts.append(f"/{self.search}/")
        return " · ".join(parts) or "all"


# -- sorting and pairing --------------------------------------------------------------------


class SortKey(StrEnum):
    """The table's sortable columns."""

    INDEX = "index"
    OUTCOME = "outcome"
    TURNS = "turns"
    DEPTH = "depth"
    BACKTRACKS = "backtracks"
    REFLECTIONS = "reflections"
    TOKENS = "tokens"
    THOUGHT = "thought"
    """Length of the long thought."""


_OUTCOME_ORDER = {c: i for i, c in enumerate(OutcomeClass)}


def _sort_value(row: ListedSession, key: SortKey) -> int:
    if key is SortKey.OUTCOME:
        return _OUTCOME_ORDER[outcome_class(row)]
    if key is SortKey.THOUGHT:
        return row.thought_chars
    if key is SortKey.DEPTH:
        return row.depth
    return int(getattr(row, key.value))


def run_label(side: int) -> str:
    """The letter that names run `side` (0-based) in a comparison: A, B, C..."""
    if not 0 <= side < MAX_RUNS:
        raise ValueError(f"runs are labelled A to Z; there is no run {side + 1}")
    return chr(ord("A") + side)


@dataclass(frozen=True, slots=True)
class SessionPair:
    """One problem's sessions, one per run, matched by session id; a side is None where
    that run has no session for the problem. (A pair for two runs, hence the name.)"""

    index: int
    """Position in the unsorted listing (the first run's order, then sessions only later
    runs have, in the order they come)."""
    sides: tuple[ListedSession | None, ...]
    """The session of each run, in the order the runs were given."""

    @property
    def a(self) -> ListedSession | None:
        return self.sides[0]

    @property
    def b(self) -> ListedSession | None:
        return self.side(1)

    @property
    def session_id(self) -> str:
        return self._any().session_id

    @property
    def problem(self) -> str:
        return self._any().problem

    def _any(self) -> ListedSession:
        return next(row for row in self.sides if row is not None)

    def side(self, which: int) -> ListedSession | None:
        return self.sides[which] if which < len(self.sides) else None


def pair_runs(*runs: Sequence[ListedSession]) -> list[SessionPair]:
    """Match the runs' sessions by session id (a hash of the problem).

    Args:
        runs: Each run's rows, one run or more (iterations 1, 2, 3...).

    Returns:
        One `SessionPair` per problem: the first run's sessions in order, each with its
        match in every other run, then the sessions only later runs have, in the order
        they come. A session id a run holds twice (never from `load_run`) gets a second
        pair rather than hiding one of them.
    """
    if not runs:
        raise ValueError("pair_runs needs at least one run")
    sides: list[list[ListedSession | None]] = []
    at: dict[str, int] = {}
    for side, rows in enumerate(runs):
        for row in rows:
            found = at.get(row.session_id)
            if found is None or sides[found][side] is not None:
                found = at[row.session_id] = len(sides)
                sides.append([None] * len(runs))
            sides[found][side] = row
    return [SessionPair(index, tuple(row)) for index, row in enumerate(sides)]


def sort_pairs(
    pairs: Iterable[SessionPair], key: SortKey, *, descending: bool = False, side: int = 0
) -> list[SessionPair]:
    """Sort by one column of one run's side; pairs missing that side go last. Stable."""
    if key is SortKey.INDEX:
        ordered = sorted(pairs, key=lambda p: p.index, reverse=descending)
        return ordered
    present = [p for p in pairs if p.side(side) is not None]
    missing = [p for p in pairs if p.side(side) is None]
    present.sort(key=lambda p: _sort_value(p.side(side), key), reverse=descending)  # type: ignore[arg-type]
    return present + missing


def visible_pairs(
    pairs: Iterable[SessionPair],
    where: SessionFilter,
    *,
    side: int = 0,
    matches: frozenset[str] | None = None,
) -> list[SessionPair]:
    """The pairs whose `side` passes the filter.

    Args:
        pairs: All pairs.
        where: The filter.
        side: Which run the filter looks at (0 first, 1 second...).
        matches: The ids whose transcript matches `where.search` (from `TranscriptSearch`);
            ignored when the filter has no search.
    """
    shown = []
    for pair in pairs:
        row = pair.side(side)
        if row is None or not where.passes_index(row):
            continue
        if where.search and matches is not None and row.session_id not in matches:
            continue
        shown.append(pair)
    return shown
