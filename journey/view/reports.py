"""Rich renderables for the jobs' reports: a synthesis, a merge, an evaluation and a
comparison of evaluations (rendering only, no I/O)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from journey.evaluation.compare import Comparison
from journey.evaluation.metrics import AccuracyBucket, EvalMetrics
from journey.runs.merge import MergeReport
from journey.runs.run_cost import invocation_cost, spend_rows
from journey.runs.synthesis_report import SynthesisReport, yield_text

__all__ = [
    "render_comparison",
    "render_merge_report",
    "render_metrics",
    "render_synthesis_report",
]


def _bucket_table(title: str, buckets: dict[str, AccuracyBucket]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1].capitalize())
    table.add_column("problems", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("accuracy", justify="right")
    for name, bucket in buckets.items():
        table.add_row(
            Text(name), str(bucket.problems), str(bucket.correct), f"{bucket.accuracy:.1%}"
        )
    return table


def render_metrics(metrics: EvalMetrics) -> Group:
    """A summary table of one evaluation (what its requests cost and what the cache did
    below the metrics), then accuracy by level and by subject."""
    summary = Table(
        title=Text(f"evaluation of {metrics.model}"), title_justify="left", show_header=False
    )
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    rows = [
        ("problems", str(metrics.problems)),
        ("accuracy", f"{metrics.accuracy:.1%} ({metrics.correct}/{metrics.problems})"),
        ("mean output tokens", f"{metrics.mean_output_tokens:.1f}"),
        ("no final answer", f"{metrics.no_answer_rate:.1%}"),
        ("cut by token limit", f"{metrics.truncated_rate:.1%}"),
        ("outputs with reflection", f"{metrics.reflection_rate:.1%}"),
        ("outputs with backtracking", f"{metrics.backtrack_rate:.1%}"),
        ("failed requests (retried next run)", str(metrics.errors)),
        ("wall time", f"{metrics.wall_seconds:.1f} s"),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    spent = spend_rows(metrics)
    if spent:
        summary.add_section()
    for name, value in spent:
        # Sentences, read from the left; a stop names the user's path: never markup.
        summary.add_row(name, Text(value, justify="left"))
    parts: list[Table] = [summary]
    if metrics.by_level:
        parts.append(_bucket_table("accuracy by level", metrics.by_level))
    if metrics.by_subject:
        parts.append(_bucket_table("accuracy by subject", metrics.by_subject))
    return Group(*parts)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _short_model(model: str) -> str:
    """A trained model's spec by its directory's name: the full path is in each run's
    metrics, and beside the run name it only crowds the table."""
    if model.startswith("hf:") and "/" in model:
        return "hf:…/" + Path(model.removeprefix("hf:")).name
    return model


def render_comparison(comparison: Comparison) -> Table:
    """Runs side by side: accuracy, difference vs the first run with its 95% CI, by level."""
    table = Table(
        title="evaluation comparison (baseline: first run)",
        title_justify="left",
        box=box.SIMPLE_HEAD,  # no column rules and one space between columns: a row of
        collapse_padding=True,  # five levels fits 80 columns
        pad_edge=False,
        caption=f"diff and 95% CI on shared problems, paired bootstrap, "
        f"{comparison.resamples} resamples, seed {comparison.seed}",
    )
    # In 80 columns the run names stay whole and long model paths fold instead.
    names = [Path(run.directory).name for run in comparison.runs]
    table.add_column("run", no_wrap=True, min_width=max(map(len, names), default=3))
    table.add_column("model", overflow="fold")
    table.add_column("n", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("diff", justify="right")
    table.add_column("95% CI", justify="right")
    for level in comparison.levels:
        table.add_column(f"L{level}" if level.isdigit() else level, justify="right")
    for name, run in zip(names, comparison.runs, strict=True):
        interval = "" if run.ci_low is None else f"[{_signed(run.ci_low)}, {_signed(run.ci_high)}]"
        by_level = [
            f"{run.by_level[level]:.0%}" if level in run.by_level else "-"
            for level in comparison.levels
        ]
        table.add_row(
            Text(name),
            Text(_short_model(run.model)),
            str(run.problems),
            f"{run.accuracy:.1%}",
            _signed(run.difference),
            interval,
            *by_level,
        )
    return table


def render_synthesis_report(report: SynthesisReport) -> Table:
    """The end-of-run summary as a two-column table."""
    table = Table(title="Synthesis summary", box=box.ROUNDED, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("run", report.run_dir),
        ("strategy", report.strategy),
        ("sessions", _sessions_text(report)),
        ("solved", str(report.solved)),
        ("failed", str(report.failed)),
        ("errors", str(report.errors)),
    ]
    if report.unverified:
        rows.append(("unverified", str(report.unverified)))
    if report.crashed:
        rows.append(("crashed", f"{report.crashed} (resume to retry)"))
    rows += [
        ("yield", yield_text(report.solved, report.finished, report.errors, rate=True)),
        ("tokens", f"{report.generated_tokens:,} generated · {report.prompt_tokens:,} prompt"),
        ("wall time", f"{report.wall_time:.1f}s"),
        ("tokens/s", f"{report.tokens_per_second:.1f}"),
    ]
    if report.spend:
        rows.append(("cost", invocation_cost(report.spend, report.cost_usd, tokens=False)))
    if report.stopped:
        rows.append(("stopped", report.stopped))
    if report.retries:
        causes = ", ".join(f"{cause}: {n}" for cause, n in report.retries_by_cause.items())
        rows.append(("retries", f"{report.retries} ({causes})"))
    if report.dataset_issues:
        rows.append(("dataset", f"{report.dataset_issues} bad lines skipped"))
    for name, value in rows:
        table.add_row(name, Text(value))  # the run path is the user's: never markup
    return table


def _sessions_text(report: SynthesisReport) -> str:
    parts = [f"{report.ran} ran now"]
    if report.resumed:
        parts.append(f"{report.resumed} resumed")
    if report.skipped:
        parts.append(f"{report.skipped} already done")
    if report.reindexed:
        parts.append(f"{report.reindexed} indexed from their logs")
    if report.restarted:
        parts.append(f"{report.restarted} started again")
    if report.retried:
        parts.append(f"{report.retried} errors run again")
    return f"{report.finished}/{report.sessions} finished ({', '.join(parts)})"


def render_merge_report(report: MergeReport) -> Table:
    """The merge summary: one row per source, then what OUT holds."""
    table = Table(title=Text(f"Merged into {report.out}"), box=box.ROUNDED)
    table.add_column("source")
    table.add_column("finished", justify="right")
    table.add_column("unfinished", justify="right")
    for source in report.sources:
        table.add_row(Text(source.path), str(source.finished), str(source.unfinished))
    table.add_section()
    table.add_row(Text("merged run", style="bold"), str(report.finished), str(report.unfinished))
    notes = [
        f"{report.added_finished} finished and {report.added_unfinished} unfinished added",
        f"{report.replaced} replaced by a more advanced copy" if report.replaced else "",
        f"{report.already_present} already present" if report.already_present else "",
        f"{report.duplicates} duplicates skipped" if report.duplicates else "",
        f"{report.missing} indexed but missing, not copied" if report.missing else "",
        f"forced past {len(report.forced)} differences" if report.forced else "",
        f"{report.cached_responses} cached responses merged" if report.cached_responses else "",
    ]
    table.caption = " · ".join(n for n in notes if n)
    return table
