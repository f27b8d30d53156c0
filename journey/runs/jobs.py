"""What every resumable job shares: progress reported as events, and items run
concurrently until they are done or their endpoint looks down.

`journey synth`, `journey eval`, `journey pairs` and `journey smooth` each run one unit
of work per item (a session, a problem), several at once, each unit saving its own
result as it finishes so that a killed job resumes. `run_each` is that loop; a job
hands it the work for one item. Domain code never draws: it reports to a
`JobProgress`, and the view (`journey.view.progress`) draws the bar. `run_job` runs
the items under that bar and stops on a streak of failures, as the job's `JobControls`
say (a runner takes them as the `ControlKeywords`); a job that appends one JSON line per
item keeps them in `AppendedResults`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Generic, Protocol, Self, TextIO, TypedDict, TypeVar

from pydantic import BaseModel

from journey.errors import error_line
from journey.runs.endpoint_health import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    EndpointDownError,
    ErrorStreak,
    raise_unexpected,
)

__all__ = [
    "AppendedResults",
    "ControlKeywords",
    "JobControls",
    "JobProgress",
    "LeftForLater",
    "NoProgress",
    "StreakStop",
    "run_each",
    "run_job",
]

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
RecordT = TypeVar("RecordT", bound=BaseModel)

Fields = Mapping[str, str]
"""Named texts a progress display may show beside its bar (a yield, an accuracy)."""


class JobProgress(Protocol):
    """Where a job reports how far it is. Every call may be ignored."""

    def running(
        self, total: int | None, completed: int, fields: Fields
    ) -> AbstractContextManager[object]:
        """Shown while the job's items run: `completed` of `total` already done."""
        ...

    def advance(self, fields: Fields) -> None:
        """One more item done; `fields` are the texts to show now."""
        ...

    def update(self, fields: Fields) -> None:
        """New texts to show, no item done (a session's tokens as they come)."""
        ...

    def resize(self, total: int) -> None:
        """The job now knows how many items it has."""
        ...

    def loading(self) -> AbstractContextManager[object]:
        """Shown while models load, before the first item."""
        ...


class NoProgress:
    """A job's progress, reported to no one."""

    def running(
        self, total: int | None, completed: int, fields: Fields
    ) -> AbstractContextManager[object]:
        return nullcontext()

    def advance(self, fields: Fields) -> None:
        pass

    def update(self, fields: Fields) -> None:
        pass

    def resize(self, total: int) -> None:
        pass

    def loading(self) -> AbstractContextManager[object]:
        return nullcontext()


class ControlKeywords(TypedDict, total=False):
    """The keywords every resumable runner takes for its `JobControls` (`EvalRunner(options,
    progress=..., force=True, max_consecutive_errors=3)`), each as `JobControls.of` takes
    it; a runner passes them on with `JobControls.of(**controls)`."""

    progress: JobProgress | None
    """Told of each item as it runs and ends (the view draws it); None tells no one."""
    force: bool
    """Resume a directory made with other settings."""
    max_consecutive_errors: int
    """Stop (`EndpointDownError`) after this many failures in a row; 0 never stops."""


@dataclass(frozen=True)
class JobControls:
    """How a resumable job is driven, whatever its work: who hears of its progress,
    whether it may resume a directory made with other settings, and when failures in a
    row stop it. `SynthesisRunner`, `EvalRunner`, `CriticEvalRunner` and `PairsSampler`
    take these as keywords (`ControlKeywords`) and keep them here, checked once.

    Raises:
        ConfigError: `max_consecutive_errors` is negative.
    """

    progress: JobProgress = field(
        default_factory=NoProgress,
        metadata={"help": "Told of each item as it runs and ends (the view draws it)."},
    )
    force: bool = field(
        default=False, metadata={"help": "Resume a directory made with other settings."}
    )
    max_consecutive_errors: int = field(
        default=DEFAULT_MAX_CONSECUTIVE_ERRORS,
        metadata={"help": "Stop (EndpointDownError) after this many failures in a row; 0: never."},
    )

    def __post_init__(self) -> None:
        self.streak()  # ErrorStreak refuses a negative limit, in the words its users share

    @classmethod
    def of(
        cls,
        *,
        progress: JobProgress | None = None,
        force: bool = False,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> JobControls:
        """The controls a runner's keywords (`ControlKeywords`) ask; no progress (None)
        tells no one.

        Raises:
            ConfigError: `max_consecutive_errors` is negative.
        """
        return cls(progress or NoProgress(), force, max_consecutive_errors)

    def streak(self) -> ErrorStreak:
        """A new count of failures in a row, for one run, stopping at this job's limit."""
        return ErrorStreak(self.max_consecutive_errors)


@dataclass(frozen=True)
class StreakStop:
    """The failure that made a job stop: the `count`-th in a row, with its error line."""

    count: int
    error: str


class LeftForLater(Exception):
    """Raised by a job's work on an item it stopped short of finishing, on purpose (a
    budget spent): what it saved is left for the next run; the item is neither done nor
    a failure."""


async def run_each(
    items: Iterable[ItemT],
    work: Callable[[ItemT], Awaitable[str | None]],
    *,
    concurrency: int | None,
    streak: ErrorStreak,
    progress: JobProgress,
    fields: Callable[[], Fields] = dict,
    halted: Callable[[], bool] = lambda: False,
) -> StreakStop | None:
    """Run `work` on every item, at most `concurrency` at once (None: no limit).

    `work` saves its item's result itself and returns None, or the one-line error of a
    failure that counts towards `streak` (a request that failed, a session that ended in
    a model error); it catches what it can recover from, and an item it gives up on
    without a model's fault (a crash in journey's own code) returns None. After each
    item the progress advances with `fields()`. When the streak reaches its limit, the
    items in flight are cancelled (each leaves what it saved so far for the next run)
    and the stop is returned, for the job to report in one line. Once `halted()` is
    true no item starts (a budget is spent); an item whose work raises `LeftForLater`
    is not counted done.

    Raises:
        Exception: The first error `work` raised (a bug, not a model's fault), once every
            item has ended.
    """
    gate = asyncio.Semaphore(concurrency) if concurrency is not None else None
    stop: StreakStop | None = None
    tasks: list[asyncio.Task[None]] = []

    async def one(item: ItemT) -> None:
        nonlocal stop
        async with gate if gate is not None else nullcontext():
            if halted():
                return  # never started: left to the next run
            try:
                failure = await work(item)
            except LeftForLater:
                return
        progress.advance(fields())
        if streak.add(failure is not None) and stop is None and failure is not None:
            stop = StreakStop(streak.count, failure)
            for other in tasks:  # in flight: cancelled, their results left to the next run
                if other is not asyncio.current_task():
                    other.cancel()

    tasks.extend(asyncio.create_task(one(item)) for item in items)
    # Waits for every task, those a stop cancelled included (they close their files);
    # a cancellation of the job itself (Ctrl-C) still propagates.
    raise_unexpected(await asyncio.gather(*tasks, return_exceptions=True))
    return stop


async def run_job(
    items: Sequence[ItemT],
    work: Callable[[ItemT], Awaitable[str | None]],
    *,
    concurrency: int | None,
    controls: JobControls,
    already: int = 0,
    fields: Callable[[], Fields] = dict,
    halted: Callable[[], bool] = lambda: False,
    stop_line: Callable[[StreakStop], str] | None = None,
) -> StreakStop | None:
    """`run_each` under `controls`: shown to its progress as running (`already` items of
    `already + len(items)` done), stopped by a new streak of failures at its limit.

    Args:
        stop_line: Words the stop (the failure streak reaching its limit) in one line, to
            raise; None: the stop is returned, for the job to report as it will.

    Returns:
        The stop, when the streak reached its limit (and `stop_line` is None), else None.

    Raises:
        EndpointDownError: The streak reached its limit: `stop_line`'s words.
        Exception: What `run_each` raises (a bug in `work`).
    """
    progress = controls.progress
    with progress.running(already + len(items), already, fields()):
        stop = await run_each(
            items,
            work,
            concurrency=concurrency,
            streak=controls.streak(),
            progress=progress,
            fields=fields,
            halted=halted,
        )
    if stop is not None and stop_line is not None:
        raise EndpointDownError(stop_line(stop))
    return stop


class AppendedResults(Generic[RecordT]):
    """One run's results, each appended to a JSONL file as a whole line once it is known.

    Used as a context manager: the file is opened for appending on entry (made if
    missing) and closed on exit. Each record is written in one write and flushed, so a
    killed job loses no line before it and at most the end of the last
    (`journey.runs.files.read_appended` drops that). `records` keeps this run's
    records, `errors` counts the items that failed.

    Args:
        path: The append-only results file (`records.jsonl`, `pairs.samples.jsonl`...).
        log: Where failures are logged (the job's own logger).
    """

    def __init__(self, path: Path, *, log: logging.Logger = logger) -> None:
        self.path = path
        self.records: list[RecordT] = []
        self.errors = 0
        self._log = log
        self._sink: TextIO | None = None

    def __enter__(self) -> Self:
        self._sink = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def add(self, record: RecordT) -> None:
        """Keep `record` and append it as one JSON line, flushed at once.

        Raises:
            RuntimeError: The file is not open (outside the `with`).
        """
        if self._sink is None:
            raise RuntimeError(f"{self.path} is not open for appending")
        self.records.append(record)
        self._sink.write(record.model_dump_json() + "\n")  # one write: a whole line
        self._sink.flush()

    def failed(self, what: str, error: Exception) -> str:
        """Count one failed item, log "<what> failed: <error>", and return the error's
        line (for `run_each`'s failure streak)."""
        self.errors += 1
        self._log.warning("%s failed: %s", what, error)
        return error_line(error)

    def saving(
        self, make: Callable[[ItemT], Awaitable[RecordT]], name: Callable[[ItemT], str]
    ) -> Callable[[ItemT], Awaitable[str | None]]:
        """A job's work on one item, for `run_job`: `make` its record and `add` it, or,
        when `make` raises, count the failure (named by `name(item)`) and return its line.
        The item then gets no line and is tried again by the next run; `LeftForLater`
        passes through."""

        async def one(item: ItemT) -> str | None:
            try:
                record = await make(item)
            except LeftForLater:
                raise  # stopped short on purpose: neither done nor a failure
            except Exception as error:  # a failed request: counted, retried next run
                return self.failed(name(item), error)
            self.add(record)
            return None

        return one
