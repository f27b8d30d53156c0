"""`JobControls`: the progress, force and failure limit every resumable runner takes
(as `ControlKeywords`, made into controls by `JobControls.of`), checked in one place, so
each runner refuses a bad limit in the same one line; and `AppendedResults` with
`run_job`, the append loop the runners share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import BaseModel

from journey.errors import ConfigError
from journey.evaluation import CriticEvalOptions, CriticEvalRunner, EvalOptions, EvalRunner
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.pairs_sampling import PairsSampler
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS, EndpointDownError
from journey.runs.files import read_appended
from journey.runs.jobs import (
    AppendedResults,
    ControlKeywords,
    Fields,
    JobControls,
    LeftForLater,
    NoProgress,
    StreakStop,
    run_job,
)

RUNNERS: dict[str, Callable[[int], object]] = {
    "eval": lambda limit: EvalRunner(EvalOptions(), max_consecutive_errors=limit),
    "eval critic": lambda limit: CriticEvalRunner(
        CriticEvalOptions(), max_consecutive_errors=limit
    ),
    "pairs": lambda limit: PairsSampler(
        PairsOptions(), grade=grade_output, max_consecutive_errors=limit
    ),
    "synth": lambda limit: SynthesisRunner(SynthesisOptions(), max_consecutive_errors=limit),
}


def test_the_defaults_tell_no_one_resume_nothing_else_and_stop_at_the_default_limit() -> None:
    controls = JobControls()
    assert isinstance(controls.progress, NoProgress)
    assert controls.force is False
    assert controls.streak().limit == DEFAULT_MAX_CONSECUTIVE_ERRORS


def test_each_run_counts_its_own_streak() -> None:
    controls = JobControls(max_consecutive_errors=2)
    first = controls.streak()
    assert not first.add(True) and first.add(True)  # the second failure in a row stops
    assert controls.streak().count == 0  # the next run starts from nothing
    never = JobControls(max_consecutive_errors=0).streak()
    assert not any(never.add(True) for _ in range(100))


def test_the_runners_keywords_are_the_controls_fields_and_none_tells_no_one() -> None:
    assert set(ControlKeywords.__annotations__) == {f.name for f in fields(JobControls)}
    default = JobControls.of(progress=None)
    assert isinstance(default.progress, NoProgress)
    assert default.force is False
    assert default.max_consecutive_errors == DEFAULT_MAX_CONSECUTIVE_ERRORS
    progress = NoProgress()
    controls = JobControls.of(progress=progress, force=True, max_consecutive_errors=3)
    assert controls == JobControls(progress, True, 3)
    with pytest.raises(ConfigError, match="got -2"):
        JobControls.of(max_consecutive_errors=-2)


@pytest.mark.parametrize("command", RUNNERS)
def test_a_negative_limit_is_one_config_error_line_for_every_runner(command: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RUNNERS[command](-1)
    assert str(raised.value) == "max consecutive errors must be 0 or more, got -1"


class Square(BaseModel):
    n: int
    square: int


class Recorded(NoProgress):
    """Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    @contextmanager
    def running(self, total: int | None, completed: int, fields: Fields) -> Iterator[None]:
        self.calls.append(("running", total, completed, dict(fields)))
        yield
        self.calls.append(("ended",))

    def advance(self, fields: Fields) -> None:
        self.calls.append(("advance", dict(fields)))


async def square(n: int) -> Square:
    if n < 0:
        raise ValueError(f"negative {n}\nsecond line")
    if n == 99:
        raise LeftForLater
    return Square(n=n, square=n * n)


async def test_appended_results_append_whole_lines_count_failures_and_show_progress(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(Square(n=0, square=0).model_dump_json() + "\n", encoding="utf-8")
    progress = Recorded()
    with AppendedResults[Square](path) as results:
        stop = await run_job(
            [1, -2, 3, 99],
            results.saving(square, name=lambda n: f"number {n}"),
            concurrency=1,
            controls=JobControls(progress=progress),
            already=1,
            fields=lambda: {"done": str(len(results.records))},
        )
    assert stop is None
    assert [r.n for r in results.records] == [1, 3]
    assert results.errors == 1  # the negative number; 99 is left for later, not a failure
    assert [r.n for r in read_appended(path, Square)] == [0, 1, 3]  # appended after the old
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert progress.calls[0] == ("running", 5, 1, {"done": "0"})  # 1 done of 1 + 4
    assert progress.calls[-1] == ("ended",)
    assert [c for c in progress.calls if c[0] == "advance"] == [
        ("advance", {"done": "1"}),
        ("advance", {"done": "1"}),
        ("advance", {"done": "2"}),
    ]


async def test_a_streak_of_failures_is_raised_in_the_jobs_words_or_returned(
    tmp_path: Path,
) -> None:
    def words(stop: StreakStop) -> str:
        return f"stopped after {stop.count}: {stop.error}"

    with AppendedResults[Square](tmp_path / "r.jsonl") as results:
        work = results.saving(square, name=str)
        with pytest.raises(EndpointDownError, match=r"^stopped after 2: ValueError: negative -2$"):
            await run_job(
                [-1, -2, -3],
                work,
                concurrency=1,
                controls=JobControls(max_consecutive_errors=2),
                stop_line=words,
            )
        stop = await run_job(
            [-4, -5],
            work,
            concurrency=1,
            controls=JobControls(max_consecutive_errors=2),
        )
    assert stop == StreakStop(2, "ValueError: negative -5")
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == ""


def test_results_are_not_appended_outside_the_with(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        AppendedResults[Square](tmp_path / "r.jsonl").add(Square(n=1, square=1))
