"""A run's numbers as a table, or several runs' side by side with their difference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from journey.runs.spend import cost_text
from journey.runs.stats import RunStats

__all__ = ["render_run_stats", "run_names"]

_Number = int | float | None


def _stat_rows(stats: RunStats) -> list[tuple[str, str, _Number]]:
    """(label, kind, value) per row; kind is "count", "rate" or "mean"."""
    rows: list[tuple[str, str, _Number]] = [
        ("sessions", "count", stats.sessions),
        ("finished", "count", stats.finished),
        ("unfinished", "count", stats.unfinished),
        ("solved", "count", stats.solved),
        ("yield (solved / finished without error)", "rate", stats.yield_rate),
    ]
    rows += [(f"outcome · {k}", "count", v) for k, v in stats.outcomes.items()]
    rows += [(f"stop · {k.replace('_', ' ')}", "count", v) for k, v in stats.stop_reasons.items()]
    rows += [
        ("mean turns", "mean", stats.mean_turns),
        ("mean backtracks", "mean", stats.mean_backtracks),
        ("mean reflections", "mean", stats.mean_reflections),
        ("mean violations", "mean", stats.mean_violations),
    ]
    rows += [(f'transcripts with "{k}"', "rate", v) for k, v in stats.keyword_rates.items()]
    rows.append(("mean transcript chars", "mean", stats.mean_transcript_chars))
    for role, used in stats.tokens.items():
        rows += [
            (f"tokens · {role} prompt", "count", used.prompt_tokens),
            (f"tokens · {role} completion", "count", used.completion_tokens),
            (f"tokens · {role} prompt / session", "mean", used.prompt_per_session),
            (f"tokens · {role} completion / session", "mean", used.completion_per_session),
        ]
    for role, counts in stats.cache.items():
        saved = counts.get("prompt_tokens_saved", 0) + counts.get("completion_tokens_saved", 0)
        rows += [
            (f"cache · {role} hits", "count", counts.get("hits", 0)),
            (f"cache · {role} misses", "count", counts.get("misses", 0)),
            (f"cache · {role} tokens saved", "count", saved),
        ]
    rows += [
        ("tokens / solved session", "mean", stats.tokens_per_solved),
        ("completion tokens / solved session", "mean", stats.completion_tokens_per_solved),
    ]
    return rows + _cost_rows(stats)


def _cost_rows(stats: RunStats) -> list[tuple[str, str, _Number]]:
    """Each role's cost; per action and what was paid only where some role has a price."""
    cost = stats.cost
    if cost is None:
        return []
    rows: list[tuple[str, str, _Number]] = [
        (f"cost · {role}", "usd", usd) for role, usd in cost.roles.items()
    ]
    if any(price is not None for price in cost.prices.values()):
        rows += [
            (f"cost · {bucket} {'tokens' if bucket == 'other' else 'turns'}", "usd", usd)
            for bucket, usd in cost.actions.items()
        ]
    rows += [
        ("cost · all roles", "usd", cost.total),
        ("cost / solved session", "usd", cost.per_solved),
    ]
    if cost.paid:
        rows += [
            (f"paid · {role} (cache hits free)", "usd", usd) for role, usd in cost.paid.items()
        ]
        rows.append(("paid · all roles", "usd", cost.paid_total))
    return rows


def _stat_value(kind: str, value: _Number) -> str:
    if value is None:
        return "—"
    if kind == "usd":
        return cost_text(value)
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "mean":
        return f"{value:,.2f}"
    return f"{value:,}"


def _stat_difference(kind: str, a: _Number, b: _Number) -> Text:
    if a is None or b is None:
        return Text("—", style="dim")
    diff = b - a
    if kind == "usd":
        words = ("-" if diff < 0 else "+") + cost_text(abs(diff))
    elif kind == "rate":
        words = f"{100 * diff:+.1f} pp"
    elif kind == "mean":
        words = f"{diff:+,.2f}"
    else:
        words = f"{diff:+,}"
    return Text(words, style="dim" if diff == 0 else "")


def run_names(paths: Sequence[str]) -> list[str]:
    """The shortest path endings that tell runs apart: ``run``, or ``a/run`` and ``b/run``."""
    parts = [PurePath(p).parts for p in paths]
    for k in range(1, max((len(p) for p in parts), default=1) + 1):
        names = [str(PurePath(*p[-k:])) if p else "." for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(paths)


def render_run_stats(stats: Sequence[RunStats]) -> Table:
    """One run's numbers, or several side by side with the difference (last − first).

    Args:
        stats: One run or more (the rounds of an iteration, in order). A count only some
            runs have (an outcome another never reached) is 0 for the others; a mean or
            rate a run lacks is ``—``.

    Returns:
        A table with a row per number, a column per run (headed by the end of its path
        that tells the runs apart), and with several runs a Δ column: the last run minus
        the first, rates in percentage points.
    """
    if not stats:
        raise ValueError("render_run_stats needs at least one run")
    per_run = [{label: (kind, value) for label, kind, value in _stat_rows(s)} for s in stats]
    labels = list(dict.fromkeys(label for rows in per_run for label in rows))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("")
    names = run_names([s.run for s in stats])
    for name in names:
        table.add_column(Text(name, overflow="fold"), justify="right")
    compared = len(stats) > 1
    if compared:
        table.add_column("Δ" if len(stats) == 2 else "Δ last−first", justify="right")
    for label in labels:
        kind = next(rows[label][0] for rows in per_run if label in rows)
        missing = 0 if kind == "count" else None  # an outcome a run never reached: 0 times
        values = [rows[label][1] if label in rows else missing for rows in per_run]
        cells: list[RenderableType] = [Text(label), *(_stat_value(kind, v) for v in values)]
        if compared:
            cells.append(_stat_difference(kind, values[0], values[-1]))
        table.add_row(*cells)
    unpriced = [
        f"{name}: {line}" if compared else line
        for name, one in zip(names, stats, strict=True)
        for line in (one.cost.missing if one.cost is not None else [])
    ]
    if unpriced:
        table.caption = Text("cost —: " + "; ".join(unpriced), style="dim")
    return table
