"""Progress bars for the jobs: each job reports to a `JobProgress`; these draw it.

A bar is drawn only when asked, and the synthesis and smoothing bars only on a
terminal: a console redirected to a file gets no half-drawn frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from journey.runs.jobs import Fields, JobProgress, NoProgress

__all__ = [
    "OptionalField",
    "ProgressBar",
    "evaluation_progress",
    "pairs_progress",
    "smoothing_progress",
    "synthesis_progress",
]


class ProgressBar:
    """A rich progress bar over a job's items, with the job's fields in its columns."""

    def __init__(self, console: Console, columns: tuple[str | ProgressColumn, ...]) -> None:
        self.console = console
        self._bar = Progress(*columns, console=console)
        self._task: TaskID | None = None

    @contextmanager
    def running(self, total: int | None, completed: int, fields: Fields) -> Iterator[object]:
        with self._bar:
            self._task = self._bar.add_task(
                "", total=total, completed=completed, **_task_fields(fields)
            )
            try:
                yield self._bar
            finally:
                self._task = None

    def advance(self, fields: Fields) -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, **_task_fields(fields))

    def update(self, fields: Fields) -> None:
        if self._task is not None:
            self._bar.update(self._task, **_task_fields(fields))

    def resize(self, total: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, total=total)

    def loading(self) -> AbstractContextManager[object]:
        return self.console.status("Loading models…", spinner="dots")


class OptionalField(ProgressColumn):
    """A job's field where the job reports it, nothing where it does not (a job that
    shares a bar, such as synthesis's, need not report every field of it)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get(self.name, "")))


def _task_fields(fields: Fields) -> dict[str, Any]:
    """A job's fields as the extra task fields rich takes (`**fields: Any`)."""
    return dict(fields)


def _bar(console: Console, enabled: bool, columns: tuple[str | ProgressColumn, ...]) -> JobProgress:
    return ProgressBar(console, columns) if enabled else NoProgress()


def synthesis_progress(console: Console, *, enabled: bool = True) -> JobProgress:
    """`journey synth`: sessions finished, the yield, the generation speed, what the run
    has cost so far ("—" while a role has no price), an ETA."""
    return _bar(
        console,
        enabled and console.is_terminal,
        (
            TextColumn("[bold]debate"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("yield {task.fields[yield_text]}"),
            TextColumn("{task.fields[speed]} tok/s"),
            OptionalField("cost"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ),
    )


def evaluation_progress(console: Console, *, enabled: bool = True) -> JobProgress:
    """`journey eval`: problems graded and the accuracy so far."""
    return _bar(
        console,
        enabled,
        (
            TextColumn("[bold]eval[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[accuracy]}"),
            TimeElapsedColumn(),
        ),
    )


def pairs_progress(console: Console, *, enabled: bool = True) -> JobProgress:
    """`journey pairs`: problems sampled, the sample accuracy and failed requests."""
    return _bar(
        console,
        enabled,
        (
            TextColumn("[bold]pairs[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
        ),
    )


def labelling_progress(console: Console, *, enabled: bool = True) -> JobProgress:
    """`journey label`: steps rolled out."""
    return _bar(
        console,
        enabled and console.is_terminal,
        (TextColumn("rolling out steps"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()),
    )


def smoothing_progress(console: Console, *, enabled: bool = True) -> JobProgress:
    """`journey smooth`: sessions rewritten."""
    return _bar(
        console,
        enabled and console.is_terminal,
        (TextColumn("smoothing"), BarColumn(), MofNCompleteColumn()),
    )
