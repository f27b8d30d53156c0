"""Per-problem evaluation records and the metrics computed from them.

A record is written for every problem as soon as it is graded (`records.jsonl`);
`EvalMetrics` is a pure function of the records (`compute_metrics`), so metrics can
be recomputed from a finished or half-finished run at any time; only what the requests
cost (its `SpendReport` fields) comes from the run that wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from journey.protocols.vocabulary import BACKTRACK_PHRASES, REFLECTION_KEYWORDS, phrase_pattern
from journey.runs.request_accounts import SpendReport

__all__ = [
    "DEFAULT_BACKTRACK_PHRASES",
    "DEFAULT_REFLECTION_KEYWORDS",
    "AccuracyBucket",
    "EvalMetrics",
    "EvalRecord",
    "PhraseCounter",
    "compute_metrics",
]

DEFAULT_REFLECTION_KEYWORDS: tuple[str, ...] = REFLECTION_KEYWORDS
"""Words that mark a model reconsidering its own reasoning (matched as whole words);
`journey.protocols.vocabulary.REFLECTION_KEYWORDS`."""

DEFAULT_BACKTRACK_PHRASES: tuple[str, ...] = BACKTRACK_PHRASES
"""Phrases that mark a model abandoning a line of reasoning for an earlier point;
`journey.protocols.vocabulary.BACKTRACK_PHRASES`."""


@dataclass(frozen=True)
class PhraseCounter:
    """Counts case-insensitive whole-word occurrences of a set of phrases in a text."""

    phrases: Sequence[str]
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Longest first, so "let me go back" wins over a shorter phrase inside it.
        object.__setattr__(self, "_pattern", phrase_pattern(self.phrases))

    def count(self, text: str) -> int:
        """How many times any of the phrases occurs in `text`."""
        return 0 if self._pattern is None else len(self._pattern.findall(text))


class EvalRecord(BaseModel):
    """One problem's generated output and its grade (a line of `records.jsonl`)."""

    id: str
    """Stable id of the problem (the hash of its text, as synthesis uses)."""
    index: int
    line: int
    problem: str
    gold: str
    output: str
    predicted: str | None
    correct: bool
    level: str | None = None
    subject: str | None = None
    output_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0
    reflections: int = 0
    """Reflection keywords found in the output."""
    backtracks: int = 0
    """Backtrack phrases found in the output."""


class AccuracyBucket(BaseModel):
    """Accuracy over one group of problems (a level, a subject, or all)."""

    problems: int
    correct: int
    accuracy: float


class EvalMetrics(SpendReport):
    """Summary of an evaluation run (`metrics.json`): the metrics over its records, and
    what this invocation's requests cost (`SpendReport`'s fields; `compute_metrics`
    leaves them empty, the runner fills them)."""

    model: str
    dataset: str
    problems: int
    correct: int
    accuracy: float
    by_level: dict[str, AccuracyBucket]
    by_subject: dict[str, AccuracyBucket]
    mean_output_tokens: float
    reflection_rate: float
    """Share of outputs with at least one reflection keyword."""
    mean_reflections: float
    backtrack_rate: float
    """Share of outputs with at least one backtrack phrase."""
    no_answer_rate: float
    """Share of outputs that mark no extractable final answer."""
    truncated_rate: float
    """Share of outputs cut by the token limit."""
    errors: int = 0
    """Problems whose generation failed in this run (no record; a re-run retries them)."""
    wall_seconds: float = 0.0
    """Every run of the evaluation's directory together (a killed run, which wrote no
    metrics, is not counted): a resumed evaluation keeps what it took before."""


def _bucket(records: Sequence[EvalRecord]) -> AccuracyBucket:
    correct = sum(r.correct for r in records)
    return AccuracyBucket(
        problems=len(records),
        correct=correct,
        accuracy=correct / len(records) if records else 0.0,
    )


def _grouped(records: Iterable[EvalRecord], key: str) -> dict[str, AccuracyBucket]:
    groups: dict[str, list[EvalRecord]] = {}
    for record in records:
        value = getattr(record, key)
        groups.setdefault("unknown" if value is None else str(value), []).append(record)
    return {name: _bucket(groups[name]) for name in sorted(groups)}


def _share(records: Sequence[EvalRecord], flags: Iterable[bool]) -> float:
    return sum(flags) / len(records) if records else 0.0


def compute_metrics(
    records: Sequence[EvalRecord],
    *,
    model: str,
    dataset: str,
    errors: int = 0,
    wall_seconds: float = 0.0,
) -> EvalMetrics:
    """Metrics over `records` (any order; an empty list gives zeros)."""
    overall = _bucket(records)
    count = len(records) or 1
    return EvalMetrics(
        model=model,
        dataset=dataset,
        problems=overall.problems,
        correct=overall.correct,
        accuracy=overall.accuracy,
        by_level=_grouped(records, "level"),
        by_subject=_grouped(records, "subject"),
        mean_output_tokens=sum(r.output_tokens for r in records) / count,
        reflection_rate=_share(records, (r.reflections > 0 for r in records)),
        mean_reflections=sum(r.reflections for r in records) / count,
        backtrack_rate=_share(records, (r.backtracks > 0 for r in records)),
        no_answer_rate=_share(records, (r.predicted is None for r in records)),
        truncated_rate=_share(records, (r.finish_reason == "length" for r in records)),
        errors=errors,
        wall_seconds=wall_seconds,
    )
