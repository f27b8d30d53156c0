"""Rich tables for a critic evaluation and a comparison of several (rendering only)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from journey.evaluation.critic_compare import CriticComparison
from journey.evaluation.critic_metrics import CriticEvalMetrics, CriticGroupMetrics, Mean, Rate

__all__ = ["render_critic_comparison", "render_critic_metrics"]


def _interval(low: float, high: float) -> str:
    return f"[{low:.1%}, {high:.1%}]"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rate(rate: Rate) -> tuple[str, str]:
    if rate.value is None:
        return "- (0/0)", ""
    return f"{rate.value:.1%} ({rate.hits}/{rate.total})", _interval(rate.low, rate.high)


def _f1(group: CriticGroupMetrics) -> tuple[str, str]:
    if group.f1 is None:
        return "-", ""
    return f"{group.f1:.1%}", _interval(group.f1_low, group.f1_high)


def _tokens(mean: Mean) -> tuple[str, str]:
    return f"{mean.value:,.0f}", f"[{mean.low:,.0f}, {mean.high:,.0f}]"


def _rows(group: CriticGroupMetrics) -> list[tuple[str, str, str]]:
    """(metric, value, 95% interval) for one group."""
    return [
        ("F1 (ProcessBench)", *_f1(group)),
        ("first error found", *_rate(group.error_accuracy)),
        ("correct kept whole", *_rate(group.correct_accuracy)),
        ("whole-solution accuracy", *_rate(group.solution_accuracy)),
        ("step precision", *_rate(group.step_precision)),
        ("step recall", *_rate(group.step_recall)),
        ("unreadable verdicts", *_rate(group.unreadable)),
        ("tokens per solution", *_tokens(group.tokens_per_solution)),
    ]


def render_critic_metrics(metrics: CriticEvalMetrics) -> Group:
    """The metrics with their 95% intervals, then the main ones per question type."""
    overall = metrics.overall
    summary = Table(
        title=Text(f"critic evaluation of {metrics.critic}"),
        title_justify="left",
        caption=f"{overall.solutions} solutions ({overall.with_error} with an error), "
        f"{overall.steps_judged} steps judged · {metrics.wall_seconds:.1f} s"
        + (f" · {metrics.errors} failed, retried next run" if metrics.errors else ""),
    )
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_column("95% CI", justify="right")
    for name, value, interval in _rows(overall):
        summary.add_row(name, value, interval)
    parts: list[Table] = [summary]
    if len(metrics.by_type) > 1:
        parts.append(_by_type(metrics))
    return Group(*parts)


def _by_type(metrics: CriticEvalMetrics) -> Table:
    table = Table(
        title="by question type", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for name in ("type", "n", "F1", "error", "correct", "solution", "prec", "recall", "unread"):
        table.add_column(name, justify="left" if name == "type" else "right")
    for name, group in metrics.by_type.items():
        table.add_row(
            Text(name),
            str(group.solutions),
            _percent(group.f1),
            *(
                _percent(rate.value)
                for rate in (
                    group.error_accuracy,
                    group.correct_accuracy,
                    group.solution_accuracy,
                    group.step_precision,
                    group.step_recall,
                    group.unreadable,
                )
            ),
        )
    return table


def render_critic_comparison(comparison: CriticComparison) -> Table:
    """Critic evaluations side by side: one column per run, one row per metric."""
    names = [Path(run.directory).name for run in comparison.runs]
    table = Table(
        title="critic comparison"
        + (" (solutions every run judged)" if comparison.shared_only else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption="value [95% CI]; shared: solutions the first run also judged",
    )
    table.add_column("metric")
    for name in names:
        table.add_column(Text(name), justify="right", overflow="fold")
    runs = [run.metrics for run in comparison.runs]
    table.add_row("critic", *(Text(m.critic) for m in runs))
    table.add_row("solutions", *(str(m.overall.solutions) for m in runs))
    table.add_row("shared", *(str(run.shared) for run in comparison.runs))
    for position, (name, _, _) in enumerate(_rows(runs[0].overall)):
        cells = []
        for metrics in runs:
            _, value, interval = _rows(metrics.overall)[position]
            cells.append(f"{value.split(' ')[0]} {interval}".strip())
        table.add_row(name, *cells)
    for kind in comparison.types:
        table.add_row(
            Text(f"F1 {kind}"),
            *(_percent(m.by_type[kind].f1) if kind in m.by_type else "-" for m in runs),
        )
    return table
