"""`journey analyze` as a table: a row per number, a column per source, side by side."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from journey.evaluation.thought_analysis import SourceAnalysis, ThoughtVersion

__all__ = ["render_thought_analysis"]

_Row = tuple[str, Callable[[SourceAnalysis], float | int], str]
"""A label, the number of a source, and how it is shown ("count", "mean" or "share")."""


def _value(kind: str, value: float | int) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "mean":
        return f"{value:,.1f}"
    return f"{value:,}"


def _keyword_rate(keyword: str) -> Callable[[SourceAnalysis], float]:
    return lambda a: a.summary.keywords_per_1k.get(keyword, math.nan)


def _skipped(reason: str) -> Callable[[SourceAnalysis], int]:
    return lambda a: a.source.skipped.get(reason, 0)


def _read_as(version: ThoughtVersion) -> Callable[[SourceAnalysis], float | int]:
    """How many of a run's thoughts were read in this version; no value for other kinds."""
    return lambda a: a.source.versions.get(version.value, math.nan)


def _rows(analyses: Sequence[SourceAnalysis]) -> list[_Row]:
    keywords = list(dict.fromkeys(k for a in analyses for k in a.summary.keywords_per_1k))
    reasons = list(dict.fromkeys(r for a in analyses for r in a.source.skipped))
    rows: list[_Row] = [("thoughts", lambda a: a.summary.thoughts, "count")]
    if any(a.source.versions for a in analyses):  # say which long thought each run gave
        rows += [(f"thoughts · {v.value}", _read_as(v), "count") for v in ThoughtVersion]
    rows += [
        ("tokens · mean", lambda a: a.summary.tokens.mean, "mean"),
        ("tokens · median", lambda a: a.summary.tokens.median, "mean"),
        ("tokens · p90", lambda a: a.summary.tokens.p90, "mean"),
        ("lines · mean", lambda a: a.summary.lines.mean, "mean"),
        ("lines · median", lambda a: a.summary.lines.median, "mean"),
        ("steps · mean", lambda a: a.summary.steps.mean, "mean"),
        ("steps · median", lambda a: a.summary.steps.median, "mean"),
    ]
    rows += [(f'"{k}" / 1k tokens', _keyword_rate(k), "mean") for k in keywords]
    rows += [
        ("reflections / 1k tokens", lambda a: a.summary.reflections_per_1k, "mean"),
        ("backtracks / 1k tokens", lambda a: a.summary.backtracks_per_1k, "mean"),
        ("with a reflection", lambda a: a.summary.with_reflection, "share"),
        ("with a backtrack", lambda a: a.summary.with_backtrack, "share"),
    ]
    rows += [(f"skipped · {r}", _skipped(r), "count") for r in reasons]
    rows.append(("malformed lines skipped", lambda a: a.source.malformed_lines, "count"))
    return rows


def render_thought_analysis(
    analyses: Sequence[SourceAnalysis],
    *,
    tokenizer: str = "heuristic",
    thought: ThoughtVersion = ThoughtVersion.SMOOTHED,
) -> Table:
    """The sources' numbers side by side.

    Args:
        analyses: What `analyse_sources` returned, one column each, in order.
        tokenizer: How tokens were counted, said in the caption.
        thought: The version of runs' long thoughts asked for, said in the caption
            when a source is a run.

    Returns:
        A table with a row per number: counts (with runs, how many thoughts were read
        smoothed and how many as drafts), means and quantiles of tokens, lines and
        steps per thought, keyword, reflection and backtrack rates per thousand tokens,
        the shares of thoughts with a reflection or a backtrack, and what was skipped.
        A number a source has no value for (no thoughts, or no run) is ``—``.
    """
    caption = f"tokens: {tokenizer}"
    if any(a.source.versions for a in analyses):
        caption += f" · run thoughts: {thought.value}"  # smoothed: where there is one
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        caption=caption,
        caption_justify="left",
    )
    table.add_column("")
    for analysis in analyses:
        header = Text(f"{analysis.name}\n{analysis.source.kind.value}", overflow="fold")
        table.add_column(header, justify="right")
    for label, number, kind in _rows(analyses):
        table.add_row(Text(label), *(_value(kind, number(a)) for a in analyses))
    return table
