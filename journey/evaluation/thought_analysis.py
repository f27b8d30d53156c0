"""`journey analyze`: long thoughts of N sources measured and summed up side by side.

Each source (a run, an export, eval records, a JSONL column; `thought_sources`) is read
(a run's sessions by the rewrite `journey smooth` accepted where there is one, unless
the draft is asked for; how many of each were read is counted and shown), every text
measured (`journey.longthought.thought_metrics`) with one token counter, and summed up
as distributions and rates per thousand tokens. `analysis_document` is the
JSON that `journey analyze --json` prints: no NaN in it, a number that has no value
(a source with no thoughts) is null.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from journey.errors import ConfigError
from journey.evaluation.thought_sources import ThoughtSource, ThoughtVersion, read_thought_source
from journey.exports.token_counts import TokenCounter, count_tokens_cheaply, embedded_token_counter
from journey.longthought.thought_metrics import (
    DEFAULT_KEYWORDS,
    ThoughtSummary,
    measure_thought,
    summarise_thoughts,
)

__all__ = [
    "DEFAULT_KEYWORDS",
    "TOKENIZERS",
    "SourceAnalysis",
    "ThoughtVersion",
    "analyse_sources",
    "analysis_document",
    "token_counter",
]

TOKENIZERS = ("heuristic", "embedded")
"""How tokens are counted: the tokenizer-free estimate, or the embedded model's tokenizer."""

_ALIASES = {"cheap": "heuristic"}


def token_counter(tokenizer: str) -> TokenCounter:
    """The token counter named `tokenizer` (`heuristic`, also `cheap`, or `embedded`).

    Raises:
        ConfigError: an unknown name.
    """
    name = _ALIASES.get(tokenizer, tokenizer)
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {tokenizer!r}; choose heuristic or embedded")
    return embedded_token_counter() if name == "embedded" else count_tokens_cheaply


@dataclass(frozen=True)
class SourceAnalysis:
    """One source: where its texts came from, what was not read, and their summary."""

    source: ThoughtSource
    summary: ThoughtSummary

    @property
    def name(self) -> str:
        return self.source.name


def _distinct_names(sources: Sequence[ThoughtSource]) -> None:
    """Sources that share a name are named by their paths, as given, instead."""
    counts = Counter(s.name for s in sources)
    for source in sources:
        if counts[source.name] > 1:
            source.name = str(source.path)


def analyse_sources(
    paths: Sequence[Path],
    *,
    count_tokens: TokenCounter = count_tokens_cheaply,
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    column: str | None = None,
    limit: int | None = None,
    thought: ThoughtVersion = ThoughtVersion.SMOOTHED,
) -> list[SourceAnalysis]:
    """Read, measure and sum up each source, in the order given.

    Args:
        paths: The sources (see `read_thought_source`).
        count_tokens: How tokens are counted (`token_counter`).
        keywords: Words or phrases rated per thousand tokens.
        column: The text field of plain JSONL sources.
        limit: Read at most this many texts per source.
        thought: Which long thought of a run's sessions is read (see `ThoughtVersion`);
            each run source counts how many of each it read.

    Raises:
        ConfigError: no source, no keyword, or a limit below 1.
        DatasetError: a source cannot be read (its path named).
    """
    if not paths:
        raise ConfigError("give at least one source to analyse")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit!r}")
    words = tuple(dict.fromkeys(k for k in keywords if k.strip()))
    if not words:
        raise ConfigError(f"give at least one non-empty keyword, got {list(keywords)!r}")
    sources = [read_thought_source(p, column=column, limit=limit, thought=thought) for p in paths]
    _distinct_names(sources)
    return [
        SourceAnalysis(
            source,
            summarise_thoughts(
                (measure_thought(t, count_tokens, words) for t in source.texts), words
            ),
        )
        for source in sources
    ]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _numbers(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _number(v) if isinstance(v, float) else v for k, v in values.items()}


def analysis_document(
    analyses: Sequence[SourceAnalysis],
    *,
    tokenizer: str,
    thought: ThoughtVersion = ThoughtVersion.SMOOTHED,
) -> dict[str, Any]:
    """The analysis as one JSON-ready document; numbers without a value are None.

    `thought` is the version asked for; each source's `thought_versions` counts the
    texts of each version it read (empty for sources other than runs).
    """
    keywords = list(analyses[0].summary.keywords_per_1k) if analyses else []
    sources = []
    for analysis in analyses:
        source, summary = analysis.source, analysis.summary
        sources.append(
            {
                "name": source.name,
                "kind": source.kind.value,
                "path": str(source.path),
                "thoughts": summary.thoughts,
                "thought_versions": source.versions,
                "tokens": _numbers(asdict(summary.tokens)),
                "lines": _numbers(asdict(summary.lines)),
                "steps": _numbers(asdict(summary.steps)),
                "keywords_per_1k": _numbers(summary.keywords_per_1k),
                "reflections_per_1k": _number(summary.reflections_per_1k),
                "backtracks_per_1k": _number(summary.backtracks_per_1k),
                "with_reflection": _number(summary.with_reflection),
                "with_backtrack": _number(summary.with_backtrack),
                "skipped": source.skipped,
                "malformed_lines": source.malformed_lines,
                "malformed_examples": source.malformed_examples,
            }
        )
    return {
        "tokenizer": _ALIASES.get(tokenizer, tokenizer),
        "thought": thought.value,
        "keywords": keywords,
        "sources": sources,
    }
