"""What a long thought is made of: its length, its steps, and the words of reflection.

The seed chose between ways of making long thoughts by counting, per thought, tokens,
lines and keywords ("wait", "alternatively", "let me check"), and by comparing those
counts across sources and iterations. `measure_thought` counts one text;
`summarise_thoughts` turns many into distributions and rates per thousand tokens, the
numbers `journey analyze` prints side by side.

Keywords are matched as whole words (or whole phrases, any whitespace between their
words) in any case, each on its own (`journey.protocols.vocabulary.phrase_pattern`).
Steps are lines that open with a step label as models write it (`STEP_LABEL`: `Step 3:`,
`**Step 3.**`). Reflections are the vocabulary's `REFLECTION_MARKERS`, the words the
smoothing checker counts; backtracks are its `BACKTRACK_PHRASES`, the phrases `journey
eval` counts in a model's answers.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from journey.protocols.steps import STEP_LABEL
from journey.protocols.vocabulary import (
    BACKTRACK_PHRASES,
    REFLECTION_MARKER,
    THOUGHT_KEYWORDS,
    phrase_pattern,
)

__all__ = [
    "DEFAULT_KEYWORDS",
    "Distribution",
    "ThoughtMetrics",
    "ThoughtSummary",
    "measure_thought",
    "summarise_thoughts",
]

DEFAULT_KEYWORDS: tuple[str, ...] = THOUGHT_KEYWORDS
"""The keywords measured when none are given: the vocabulary's `THOUGHT_KEYWORDS`."""

_BACKTRACK = phrase_pattern(BACKTRACK_PHRASES)


@lru_cache(maxsize=256)
def _keyword_pattern(keyword: str) -> re.Pattern[str] | None:
    return phrase_pattern([keyword])


def _count(pattern: re.Pattern[str] | None, text: str) -> int:
    return 0 if pattern is None else len(pattern.findall(text))


@dataclass(frozen=True)
class ThoughtMetrics:
    """The counts of one text."""

    tokens: int
    lines: int
    """Non-empty lines."""
    steps: int
    """Lines that open a numbered step ("Step 3: ...", "**Step 3.**")."""
    reflections: int
    """Reflection markers (`REFLECTION_MARKER`)."""
    backtracks: int
    """Backtrack phrases (`BACKTRACK_PHRASES`)."""
    keywords: dict[str, int]


def measure_thought(
    text: str,
    count_tokens: Callable[[str], int],
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
) -> ThoughtMetrics:
    """Count one text's tokens, lines, steps, reflections, backtracks and keywords.

    Args:
        text: The thought.
        count_tokens: How its tokens are counted (`journey.exports.token_counts`).
        keywords: Words or phrases counted each on its own, as whole words in any case;
            the result keys them as given.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    return ThoughtMetrics(
        tokens=count_tokens(text),
        lines=len(lines),
        steps=len(STEP_LABEL.findall(text)),
        reflections=len(REFLECTION_MARKER.findall(text)),
        backtracks=_count(_BACKTRACK, text),
        keywords={k: _count(_keyword_pattern(k), text) for k in keywords},
    )


@dataclass(frozen=True)
class Distribution:
    """Mean, quantiles and extremes of one count over many thoughts."""

    mean: float
    p10: float
    median: float
    p90: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        """The distribution of `values`; every field is nan when there are none."""
        if not values:
            nan = math.nan
            return cls(nan, nan, nan, nan, nan, nan)
        ordered = sorted(values)
        return cls(
            mean=statistics.fmean(ordered),
            p10=_quantile(ordered, 0.1),
            median=_quantile(ordered, 0.5),
            p90=_quantile(ordered, 0.9),
            minimum=ordered[0],
            maximum=ordered[-1],
        )


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between the closest ranks."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class ThoughtSummary:
    """Many thoughts of one source: distributions, and rates per thousand tokens."""

    thoughts: int
    tokens: Distribution
    lines: Distribution
    steps: Distribution
    keywords_per_1k: dict[str, float]
    """Each keyword's occurrences per thousand tokens, over all the source's tokens."""
    reflections_per_1k: float
    backtracks_per_1k: float
    with_reflection: float
    """Share of thoughts with at least one reflection marker."""
    with_backtrack: float
    """Share of thoughts with at least one backtrack phrase."""
    token_counts: list[int] = field(repr=False, default_factory=list)
    """Every thought's tokens, for histograms."""


def summarise_thoughts(
    metrics: Iterable[ThoughtMetrics], keywords: Sequence[str] = DEFAULT_KEYWORDS
) -> ThoughtSummary:
    """The distributions and rates of one source's thoughts.

    Args:
        metrics: What `measure_thought` counted in each thought.
        keywords: The keywords to rate (those the thoughts were measured with).

    Returns:
        The summary; with no thoughts (or no tokens) its means, quantiles, rates and
        shares are nan, never a division by zero.
    """
    measured = list(metrics)
    total_tokens = sum(m.tokens for m in measured)

    def per_1k(count: int) -> float:
        return 1000 * count / total_tokens if total_tokens else math.nan

    def share(test: Callable[[ThoughtMetrics], bool]) -> float:
        return sum(1 for m in measured if test(m)) / len(measured) if measured else math.nan

    return ThoughtSummary(
        thoughts=len(measured),
        tokens=Distribution.of([m.tokens for m in measured]),
        lines=Distribution.of([m.lines for m in measured]),
        steps=Distribution.of([m.steps for m in measured]),
        keywords_per_1k={k: per_1k(sum(m.keywords.get(k, 0) for m in measured)) for k in keywords},
        reflections_per_1k=per_1k(sum(m.reflections for m in measured)),
        backtracks_per_1k=per_1k(sum(m.backtracks for m in measured)),
        with_reflection=share(lambda m: m.reflections > 0),
        with_backtrack=share(lambda m: m.backtracks > 0),
        token_counts=[m.tokens for m in measured],
    )
