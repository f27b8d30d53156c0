"""How well a critic finds the first wrong step: per-solution records and their metrics.

A `CriticRecord` holds the critic's verdict on each step it judged, in order, until
its first rejection (ProcessBench's protocol). `compute_critic_metrics` is a pure
function of the records:

- **first-error accuracy** on solutions with an error (the critic's first rejection is
  the labelled first wrong step) and on correct ones (it rejected nothing), and their
  harmonic mean, ProcessBench's F1;
- **whole-solution accuracy**: the solution called incorrect (any rejection) when it
  has an error, correct (every step accepted) when it has none;
- **step precision and recall** for finding wrong steps, on the labelled steps (those
  up to and including the first error; every step of a correct solution): a rejection
  of the first wrong step is a true positive, a rejection of an earlier (correct) step
  a false positive, and a first wrong step not rejected (accepted, unreadable, or never
  reached because the critic stopped earlier) a miss;
- the **share of unreadable verdicts** among all verdicts, and **tokens per solution**.

A verdict that could not be read (`unknown`) is never taken as acceptance: a solution
with one before its first rejection (or anywhere, when nothing was rejected) has no
readable first-error prediction and counts as a miss for both accuracies. Rates carry
95% Wilson intervals (`wilson_interval`), F1 a stratified percentile bootstrap over
solutions with and without errors, tokens a normal interval of the mean. Every number
is also given per question type (`by_type`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from journey.evaluation.compare import wilson_interval
from journey.protocols import StepVerdict

__all__ = [
    "F1_RESAMPLES",
    "CriticEvalMetrics",
    "CriticGroupMetrics",
    "CriticRecord",
    "Mean",
    "Rate",
    "StepJudgement",
    "compute_critic_metrics",
    "critic_group_metrics",
    "f1_score",
]

F1_RESAMPLES = 1000
"""Bootstrap resamples behind the F1 interval (seeded: the interval is reproducible)."""


class StepJudgement(BaseModel):
    """The critic's judgement of one step."""

    step: int
    """1-based step number."""
    verdict: StepVerdict
    source: str
    """The evidence behind the verdict (`critic`, `critic_action`, `none`)."""
    action: str
    reason: str = ""
    raw: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    label_scores: dict[str, float] | None = None
    violations: list[str] = Field(default_factory=list)
    """The kinds of protocol violations in the reply (`unparseable_verdict`...)."""


class CriticRecord(BaseModel):
    """One solution as the critic judged it (a line of `judgements.jsonl`)."""

    id: str
    index: int
    line: int = 0
    type: str | None = None
    steps: int
    """How many steps the solution has."""
    first_error: int | None
    """The labelled first wrong step (1-based); None when every step is correct."""
    judgements: list[StepJudgement]
    """In step order, up to and including the first rejection."""
    seconds: float = 0.0

    @property
    def rejected(self) -> int | None:
        """The step the critic first judged incorrect, or None."""
        return next((j.step for j in self.judgements if j.verdict is StepVerdict.INCORRECT), None)

    @property
    def unreadable(self) -> int:
        return sum(j.verdict is StepVerdict.UNKNOWN for j in self.judgements)

    @property
    def readable_prediction(self) -> bool:
        """True when every verdict before the first rejection (all of them, without one)
        could be read: only then does the critic name a first error, or none."""
        stop = self.rejected
        return all(
            j.verdict is not StepVerdict.UNKNOWN
            for j in self.judgements
            if stop is None or j.step < stop
        )

    @property
    def first_error_hit(self) -> bool:
        """The critic named the labelled first error (or none, for a correct solution)."""
        return self.readable_prediction and self.rejected == self.first_error

    @property
    def solution_hit(self) -> bool:
        """The critic called the whole solution right: incorrect when it has an error
        (any rejection), correct when it has none (every step accepted)."""
        if self.first_error is not None:
            return self.rejected is not None
        return self.rejected is None and self.unreadable == 0

    @property
    def tokens(self) -> int:
        return sum(j.prompt_tokens + j.completion_tokens for j in self.judgements)


class Rate(BaseModel):
    """`hits` of `total`, with a 95% interval; no value when `total` is 0."""

    hits: int
    total: int
    value: float | None
    low: float
    high: float

    @classmethod
    def of(cls, hits: int, total: int) -> Rate:
        low, high = wilson_interval(hits, total)
        return cls(
            hits=hits, total=total, value=hits / total if total else None, low=low, high=high
        )


class Mean(BaseModel):
    """A mean with its 95% normal interval (the mean itself under two values)."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Mean:
        count = len(values)
        mean = sum(values) / count if count else 0.0
        if count < 2:
            return cls(value=mean, low=mean, high=mean)
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (count - 1))
        half = 1.96 * spread / math.sqrt(count)
        return cls(value=mean, low=max(0.0, mean - half), high=mean + half)


class CriticGroupMetrics(BaseModel):
    """Every metric over one group of solutions (all of them, or one question type)."""

    solutions: int
    with_error: int
    error_accuracy: Rate
    """First-error accuracy on solutions with an error."""
    correct_accuracy: Rate
    """Accuracy on correct solutions (no step rejected)."""
    f1: float | None
    """Harmonic mean of the two accuracies (ProcessBench's F1); None without solutions
    of either kind."""
    f1_low: float
    f1_high: float
    solution_accuracy: Rate
    """Whole solutions called correct or incorrect rightly."""
    step_precision: Rate
    """Of the labelled steps rejected, the share that were the first wrong step."""
    step_recall: Rate
    """Of the first wrong steps, the share rejected."""
    unreadable: Rate
    """Verdicts that could not be read, of all verdicts."""
    steps_judged: int
    tokens_per_solution: Mean


class CriticEvalMetrics(BaseModel):
    """Summary of a critic evaluation (`critic-metrics.json`, the --json output)."""

    critic: str
    dataset: str
    overall: CriticGroupMetrics
    by_type: dict[str, CriticGroupMetrics]
    errors: int = 0
    """Solutions whose judging failed in this run (no record; a re-run retries them)."""
    wall_seconds: float = 0.0


def _harmonic(first: float, second: float) -> float:
    return 2 * first * second / (first + second) if first + second else 0.0


def f1_score(error_accuracy: float | None, correct_accuracy: float | None) -> float | None:
    """Harmonic mean of the two accuracies; 0 when either is 0, None when either is None."""
    if error_accuracy is None or correct_accuracy is None:
        return None
    return _harmonic(error_accuracy, correct_accuracy)


def _resampled(flags: Sequence[bool], rng: random.Random) -> float:
    return sum(rng.choices(flags, k=len(flags))) / len(flags)


def _f1_interval(
    erroneous: Sequence[bool], correct: Sequence[bool], *, seed: int
) -> tuple[float, float]:
    """95% percentile bootstrap of F1, resampling each stratum within itself."""
    if not erroneous or not correct:
        return 0.0, 0.0
    rng = random.Random(seed)
    draws = sorted(
        _harmonic(_resampled(erroneous, rng), _resampled(correct, rng)) for _ in range(F1_RESAMPLES)
    )
    return draws[int(0.025 * (F1_RESAMPLES - 1))], draws[int(0.975 * (F1_RESAMPLES - 1))]


def _count(records: Sequence[CriticRecord], test: Callable[[CriticRecord], bool]) -> int:
    return sum(1 for record in records if test(record))


def critic_group_metrics(records: Sequence[CriticRecord], *, seed: int = 0) -> CriticGroupMetrics:
    """Every metric over `records` (any order; none gives zeros)."""
    erroneous = [r for r in records if r.first_error is not None]
    correct = [r for r in records if r.first_error is None]
    error_hits = [r.first_error_hit for r in erroneous]
    correct_hits = [r.first_error_hit for r in correct]
    error_accuracy = Rate.of(sum(error_hits), len(erroneous))
    correct_accuracy = Rate.of(sum(correct_hits), len(correct))
    f1_low, f1_high = _f1_interval(error_hits, correct_hits, seed=seed)
    # Labelled steps: up to the first error. A rejection there is at the first error
    # (a true positive) or before it (a false positive); the critic stops at it.
    true_positive = _count(erroneous, lambda r: r.rejected == r.first_error)
    false_positive = _count(
        records, lambda r: r.rejected is not None and r.rejected < (r.first_error or r.steps + 1)
    )
    verdicts = sum(len(r.judgements) for r in records)
    return CriticGroupMetrics(
        solutions=len(records),
        with_error=len(erroneous),
        error_accuracy=error_accuracy,
        correct_accuracy=correct_accuracy,
        f1=f1_score(error_accuracy.value, correct_accuracy.value),
        f1_low=f1_low,
        f1_high=f1_high,
        solution_accuracy=Rate.of(_count(records, lambda r: r.solution_hit), len(records)),
        step_precision=Rate.of(true_positive, true_positive + false_positive),
        step_recall=Rate.of(true_positive, len(erroneous)),
        unreadable=Rate.of(sum(r.unreadable for r in records), verdicts),
        steps_judged=verdicts,
        tokens_per_solution=Mean.of([float(r.tokens) for r in records]),
    )


def compute_critic_metrics(
    records: Sequence[CriticRecord],
    *,
    critic: str,
    dataset: str,
    errors: int = 0,
    wall_seconds: float = 0.0,
    seed: int = 0,
) -> CriticEvalMetrics:
    """Metrics over `records`, overall and per question type (`unknown` when unset)."""
    groups: dict[str, list[CriticRecord]] = {}
    for record in records:
        groups.setdefault(record.type or "unknown", []).append(record)
    return CriticEvalMetrics(
        critic=critic,
        dataset=dataset,
        overall=critic_group_metrics(records, seed=seed),
        by_type={name: critic_group_metrics(groups[name], seed=seed) for name in sorted(groups)},
        errors=errors,
        wall_seconds=wall_seconds,
    )
