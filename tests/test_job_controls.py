"""`JobControls`: the progress, force and failure limit every resumable runner takes,
checked in one place, so each runner refuses a bad limit in the same one line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from journey.errors import ConfigError
from journey.evaluation import CriticEvalOptions, CriticEvalRunner, EvalOptions, EvalRunner
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.pairs_sampling import PairsSampler
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS
from journey.runs.jobs import JobControls, NoProgress

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


@pytest.mark.parametrize("command", RUNNERS)
def test_a_negative_limit_is_one_config_error_line_for_every_runner(command: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RUNNERS[command](-1)
    assert str(raised.value) == "max consecutive errors must be 0 or more, got -1"
