"""What a run holds, read back without changing it: sessions, outcomes, tokens, words.

`read_run` opens a run directory read-only (unlike `RunDirectory`, it never creates
anything) and finds its finished sessions (`sessions.jsonl`) and its unfinished ones
(an event log without a summary line: a crash, or a run still going). `session_overviews`
gives one row per session for listings (a finished session's row is its `SessionSummary`,
an unfinished one's a `SessionOverview` read from its log); `run_stats` sums a run up as a
`RunStats` model that `journey stats --json` dumps.

Per-session means, token totals and keyword rates are over *finished* sessions (the ones
that produced data); unfinished sessions are counted, nothing more. The yield is the
share of `solved` among the sessions that finished without an error: a `model_error`
session (the backend kept failing) says nothing about the strategy, is counted in
`errors` beside it, and is run again by the next `journey synth` of the run.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from pydantic import BaseModel, Field

from journey.errors import ConfigError, DatasetError
from journey.longthought.writer import write_long_thought
from journey.protocols import Outcome, ProblemPosed, Role, TokenUsage
from journey.protocols.vocabulary import TRANSCRIPT_KEYWORDS, phrase_pattern
from journey.runs.prices import ModelPrice
from journey.runs.response_cache import recorded_cache_stats
from journey.runs.run_cost import RunCost, run_cost
from journey.runs.rundir import EventLog, SessionSummary, read_event_log, read_index_lines
from journey.sessions.state import SessionState, StateError

__all__ = [
    "DEFAULT_KEYWORDS",
    "ListedSession",
    "RoleTokens",
    "RunContents",
    "RunStats",
    "SessionOverview",
    "UnfinishedSession",
    "keyword_pattern",
    "read_run",
    "run_stats",
    "session_overviews",
]

logger = logging.getLogger(__name__)

DEFAULT_KEYWORDS: tuple[str, ...] = TRANSCRIPT_KEYWORDS
"""Words that mark a reflective long thought; their rate is the share of transcripts with them
(`journey.protocols.vocabulary.TRANSCRIPT_KEYWORDS`)."""

UNFINISHED = "unfinished"
"""The outcome shown for a session whose log has no `session_ended` event."""


# -- reading a run --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnfinishedSession:
    """A session with an event log but no line in `sessions.jsonl`."""

    session_id: str
    log: EventLog


@dataclass(frozen=True)
class RunContents:
    """The sessions of a run directory, as found on disk."""

    root: Path
    finished: list[SessionSummary]
    """One summary per session, in index order (the last line wins for a session indexed twice)."""
    unfinished: list[UnfinishedSession]
    """Sorted by session id."""
    bad_lines: list[int] = field(default_factory=list)
    """1-based lines of `sessions.jsonl` that did not parse (skipped)."""

    def events_path(self, session_id: str) -> Path:
        return self.root / "sessions" / session_id / "events.jsonl"

    def transcript(self, session_id: str) -> str | None:
        """The session's long thought: `transcript.md`, else written from its event log."""
        path = self.root / "sessions" / session_id / "transcript.md"
        if path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\n")
        events = self.events_path(session_id)
        if events.is_file():
            return write_long_thought(read_event_log(events).events, None)
        return None


def read_run(root: Path, *, warn: bool = True) -> RunContents:
    """Read a run directory's index and find its unfinished sessions; writes nothing.

    Args:
        root: The run directory (the one holding `sessions.jsonl` and `sessions/`).
        warn: Log the index lines that did not parse (off for a caller that shows
            `bad_lines` itself).

    Raises:
        DatasetError: `root` does not exist or holds neither `sessions.jsonl` nor `sessions/`.
    """
    root = Path(root)
    index, sessions = root / "sessions.jsonl", root / "sessions"
    if not root.is_dir():
        raise DatasetError(f"no run directory at {str(root)!r}")
    if not index.is_file() and not sessions.is_dir():
        raise DatasetError(
            f"{str(root)!r} is not a run directory (no sessions.jsonl, no sessions/)"
        )
    indexed = read_index_lines(index, warn=warn)
    by_id = indexed.summaries
    unfinished = []
    if sessions.is_dir():
        # Only folders without an index line are looked into: a 10,000-session run has
        # a handful, and sorting plain names (not Paths) keeps the scan cheap.
        with os.scandir(sessions) as entries:
            names = sorted(e.name for e in entries if e.name not in by_id and e.is_dir())
        for name in names:
            log = sessions / name / "events.jsonl"
            if log.is_file():
                unfinished.append(UnfinishedSession(name, read_event_log(log)))
    return RunContents(
        root=root, finished=list(by_id.values()), unfinished=unfinished, bad_lines=indexed.bad_lines
    )


# -- one row per session --------------------------------------------------------------------


@dataclass(frozen=True)
class SessionOverview:
    """A session as a listing shows it, read from its event log: an unfinished one.

    A finished session is listed as its `SessionSummary`, which has the same row
    attributes (`ListedSession`).
    """

    session_id: str
    problem: str
    outcome: str
    """An `Outcome` value, or "unfinished"."""
    stop_reason: str | None
    turns: int
    backtracks: int
    reflections: int
    violations: int
    tokens: int
    """Prompt and completion tokens of every role together."""
    truncated: bool = False
    """The event log's last line was cut short (unfinished sessions only)."""
    depth: int = 0
    """The deepest step of the tree."""
    thought_chars: int = 0
    """Characters of the long thought (0 for an unfinished session: none was written)."""

    @property
    def finished(self) -> bool:
        return self.outcome != UNFINISHED


ListedSession: TypeAlias = SessionSummary | SessionOverview
"""One row of a listing (`journey replay`, `journey browse`): a finished session's index
line, or what an unfinished session's event log shows. Both have the row's attributes:
`session_id`, `problem`, `outcome`, `stop_reason`, `turns`, `backtracks`, `reflections`,
`violations`, `tokens`, `depth`, `thought_chars`, `truncated` and `finished`."""


def _overview_of_log(session: UnfinishedSession) -> SessionOverview:
    """A row from the fold of the session's events (`SessionState`).

    A log the fold refuses (a damaged line lost a step) still gets a row, with what can
    be read without the fold: its problem and turns, no counts. An empty log (a session
    just started, or cut in its first line) gets an empty row, without a warning.
    """
    events = session.log.events
    # Beam search stamps an event with its expansion's turn, so the last event's turn
    # (`SessionState.turn`) need not be the largest: the listing shows the largest.
    turns = max((e.turn for e in events), default=0)
    try:
        state = SessionState.from_events(events) if events else None
    except StateError as refused:
        logger.warning(
            "session %s: its event log does not fold (%s); listed without counts",
            session.session_id,
            refused,
        )
        state = None
    if state is None:
        posed = next((e for e in events if isinstance(e, ProblemPosed)), None)
        return SessionOverview(
            session_id=session.session_id,
            problem=posed.problem if posed else "",
            outcome=UNFINISHED,
            stop_reason=None,
            turns=turns,
            backtracks=0,
            reflections=0,
            violations=0,
            tokens=0,
            truncated=session.log.truncated,
        )
    return SessionOverview(
        session_id=session.session_id,
        problem=state.posed.problem,
        outcome=UNFINISHED,
        stop_reason=None,
        turns=turns,
        backtracks=state.backtracks,
        reflections=state.reflections,
        violations=state.violations,
        tokens=sum(u.total for u in state.usage.values()),
        truncated=session.log.truncated,
        depth=max(node.depth for node in state.tree),
    )


def session_overviews(run: RunContents) -> list[ListedSession]:
    """Finished sessions in index order, then unfinished ones by id: the rows of a listing."""
    return [*run.finished, *(_overview_of_log(s) for s in run.unfinished)]


# -- the run's numbers ----------------------------------------------------------------------


class RoleTokens(BaseModel):
    """Tokens one role used over a run's finished sessions."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_per_session: float | None = None
    completion_per_session: float | None = None


class RunStats(BaseModel):
    """A run summed up. Means and rates are None when no session finished."""

    run: str = Field(description="The run directory.")
    sessions: int
    finished: int
    unfinished: int
    solved: int
    errors: int = Field(
        default=0, description="Finished sessions that ended in model_error (not in the yield)."
    )
    yield_rate: float | None = Field(
        description="Solved / sessions that finished without an error (model_error)."
    )
    outcomes: dict[str, int] = Field(description="Finished sessions per outcome.")
    stop_reasons: dict[str, int] = Field(description="Finished sessions per stop reason.")
    mean_turns: float | None
    mean_backtracks: float | None
    mean_reflections: float | None
    mean_violations: float | None
    transcripts: int = Field(description="Finished sessions whose transcript could be read.")
    keyword_rates: dict[str, float | None] = Field(
        description="Per keyword, the share of transcripts containing it (case-insensitive, "
        "whole words)."
    )
    tokens: dict[str, RoleTokens] = Field(description="Token use per role.")
    tokens_per_solved: float | None = Field(
        default=None,
        description="All roles' prompt + completion tokens over finished sessions, per solved "
        "one: what a verified long thought costs, failed sessions included.",
    )
    completion_tokens_per_solved: float | None = Field(
        default=None, description="The same with generated (completion) tokens only."
    )
    mean_transcript_chars: float | None
    cache: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per role, what the response cache did over the run's invocations: "
        "hits, misses, stored, tokens saved (empty when the run kept no counts).",
    )
    cost: RunCost | None = Field(
        default=None,
        description="What the finished sessions cost in USD, per role, per action and per "
        "solved one, and what the run paid (`journey.runs.run_cost`).",
    )


def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A case-insensitive whole-word pattern; spaces in `keyword` match any whitespace
    (`phrase_pattern`, as every count of words in journey).

    Raises:
        ConfigError: the keyword is blank.
    """
    pattern = phrase_pattern([keyword])
    if pattern is None:
        raise ConfigError("a keyword must have at least one non-blank character")
    return pattern


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def run_stats(
    run: RunContents,
    *,
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    prices: Mapping[str, ModelPrice] | None = None,
) -> RunStats:
    """Sum a run up.

    Args:
        run: What `read_run` found.
        keywords: Words or phrases whose rate in the transcripts is counted.
        prices: Prices by model name, over those the run was given (`run_cost`).

    Returns:
        Counts over all sessions; means, token totals and keyword rates over finished ones.
    """
    done = run.finished
    n = len(done)
    transcripts = [t for t in (run.transcript(s.session_id) for s in done) if t is not None]
    patterns = {keyword: keyword_pattern(keyword) for keyword in keywords}
    usage: dict[Role, TokenUsage] = {}
    for summary in done:
        for role, used in summary.usage.items():
            usage[role] = usage.get(role, TokenUsage()) + used
    tokens = {
        role.value: RoleTokens(
            prompt_tokens=used.prompt_tokens,
            completion_tokens=used.completion_tokens,
            prompt_per_session=used.prompt_tokens / n,
            completion_per_session=used.completion_tokens / n,
        )
        for role, used in sorted(usage.items(), key=lambda item: list(Role).index(item[0]))
    }
    solved = sum(s.outcome == Outcome.SOLVED for s in done)
    errors = sum(s.outcome == Outcome.ERROR for s in done)
    generated = sum(used.completion_tokens for used in usage.values())
    everything = generated + sum(used.prompt_tokens for used in usage.values())
    return RunStats(
        run=str(run.root),
        sessions=n + len(run.unfinished),
        finished=n,
        unfinished=len(run.unfinished),
        solved=solved,
        errors=errors,
        yield_rate=solved / (n - errors) if n > errors else None,
        outcomes=dict(Counter(s.outcome for s in done).most_common()),
        stop_reasons=dict(Counter(s.stop_reason for s in done).most_common()),
        mean_turns=_mean([s.turns for s in done]),
        mean_backtracks=_mean([s.backtracks for s in done]),
        mean_reflections=_mean([s.reflections for s in done]),
        mean_violations=_mean([s.violations for s in done]),
        transcripts=len(transcripts),
        keyword_rates={
            keyword: _mean([float(bool(pattern.search(t))) for t in transcripts])
            for keyword, pattern in patterns.items()
        },
        tokens=tokens,
        tokens_per_solved=everything / solved if solved else None,
        completion_tokens_per_solved=generated / solved if solved else None,
        mean_transcript_chars=_mean([s.transcript_chars for s in done]),
        cache={role: stats.as_dict() for role, stats in recorded_cache_stats(run.root).items()},
        cost=run_cost(run.root, done, prices=prices),
    )
