"""What every resumable job shares: progress reported as events, and items run
concurrently until they are done or their endpoint looks down.

`journey synth`, `journey eval`, `journey pairs` and `journey smooth` each run one unit
of work per item (a session, a problem), several at once, each unit saving its own
result as it finishes so that a killed job resumes. `run_each` is that loop; a job
hands it the work for one item. Domain code never draws: it reports to a
`JobProgress`, and the view (`journey.view.progress`) draws the bar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from journey.runs.endpoint_health import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ErrorStreak,
    raise_unexpected,
)

__all__ = [
    "JobControls",
    "JobProgress",
    "LeftForLater",
    "NoProgress",
    "StreakStop",
    "run_each",
]

ItemT = TypeVar("ItemT")

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


@dataclass(frozen=True)
class JobControls:
    """How a resumable job is driven, whatever its work: who hears of its progress,
    whether it may resume a directory made with other settings, and when failures in a
    row stop it. `SynthesisRunner`, `EvalRunner`, `CriticEvalRunner` and `PairsSampler`
    take these as keywords and keep them here, checked once.

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
