"""A chart of a comparison: accuracy by level, one bar per evaluation (`--plot FILE`).

matplotlib is an optional extra (`pip install 'journey-learning[plot]'`), so it is
imported inside `plot_comparison`, never with the package. The figure is drawn on an
Agg canvas directly (no `pyplot`), so it needs no display, leaves matplotlib's global
backend alone, and works the same headless, in CI and in a notebook.

Error bars are 95% Wilson score intervals of each bar's own accuracy. The bootstrap
interval that `journey eval compare` prints is for the *difference* from the baseline,
so it does not describe a single bar.
"""

from __future__ import annotations

from pathlib import Path

from journey.errors import ConfigError
from journey.evaluation.compare import Comparison, wilson_interval
from journey.evaluation.metrics import AccuracyBucket

__all__ = ["PLOT_FORMATS", "plot_comparison"]

PLOT_FORMATS = (".png", ".svg", ".pdf")
"""File suffixes `plot_comparison` writes (the format follows the suffix)."""

_INSTALL_HINT = "--plot needs matplotlib: pip install 'journey-learning[plot]'"


def _group_label(level: str) -> str:
    return f"Level {level}" if level.isdigit() else level


def _bucket(run_counts: dict[str, AccuracyBucket], level: str) -> AccuracyBucket | None:
    bucket = run_counts.get(level)
    return bucket if bucket is not None and bucket.problems > 0 else None


def _overall(correct: int, problems: int) -> AccuracyBucket:
    return AccuracyBucket(
        problems=problems, correct=correct, accuracy=correct / problems if problems else 0.0
    )


def plot_comparison(comparison: Comparison, path: Path, *, title: str | None = None) -> Path:
    """Draw accuracy by level as grouped bars and save it to `path`.

    One group per level plus an "all" group; one bar per evaluation, in comparison
    order (the baseline first), with a 95% Wilson interval as its error bar. A run
    with no problems at a level gets no bar there.

    Args:
        comparison: What `compare_runs` returned.
        path: Where to write; the suffix picks the format (.png, .svg or .pdf).
        title: Figure title; by default names the baseline and the problem counts.

    Returns:
        `path`, once written.

    Raises:
        ConfigError: matplotlib is not installed, or the suffix is not a known format.
    """
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ConfigError(f"plot file {str(path)!r} must end in one of {', '.join(PLOT_FORMATS)}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import PercentFormatter
    except ImportError:
        raise ConfigError(_INSTALL_HINT) from None

    groups = [*comparison.levels, "all"]
    runs = comparison.runs
    width = 0.8 / max(len(runs), 1)  # the bars of one group share 80% of its slot
    # Wider with more bars, so labels and error bars stay readable.
    figure = Figure(figsize=(max(6.0, 1.5 + len(groups) * (0.4 + 0.35 * len(runs))), 4.5))
    FigureCanvasAgg(figure)  # attaches itself: savefig then needs no pyplot backend
    axes = figure.add_subplot()
    for position, run in enumerate(runs):
        counts = {**run.level_counts, "all": _overall(run.correct, run.problems)}
        xs: list[float] = []
        heights: list[float] = []
        below: list[float] = []
        above: list[float] = []
        for index, group in enumerate(groups):
            bucket = _bucket(counts, group)
            if bucket is None:
                continue
            low, high = wilson_interval(bucket.correct, bucket.problems)
            xs.append(index - 0.4 + width * (position + 0.5))
            heights.append(bucket.accuracy)
            # Clamped at zero: float rounding can put the bound a hair past the point.
            below.append(max(0.0, bucket.accuracy - low))
            above.append(max(0.0, high - bucket.accuracy))
        label = Path(run.directory).name or run.directory
        if run.model not in ("", "?"):
            label = f"{label} ({run.model})"
        axes.bar(xs, heights, width, yerr=[below, above], capsize=3, label=label)
    axes.set_xticks(range(len(groups)), [_group_label(g) for g in groups])
    axes.set_ylim(0, 1.05)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel("MATH level")
    axes.set_ylabel("accuracy (95% Wilson interval)")
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if title is None:
        sizes = ", ".join(str(run.problems) for run in runs)
        title = f"Accuracy by level (baseline: {Path(runs[0].directory).name}; problems: {sizes})"
    axes.set_title(title)
    # Below the axes, so the legend never hides a bar near 100%.
    axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=min(len(runs), 3), fontsize="small"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path
