"""Histograms of thought lengths: one per source, and all sources overlaid (`--png DIR`).

matplotlib is the optional `plot` extra, imported only here and only when asked, and
drawn on an Agg canvas without `pyplot` (as `journey.evaluation.plot` does), so it
needs no display and leaves matplotlib's global state alone. Every histogram of one
call shares its bins, so the sources' shapes compare bar for bar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from journey.errors import ConfigError
from journey.evaluation.thought_analysis import SourceAnalysis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["OVERLAY_NAME", "plot_token_histograms"]

OVERLAY_NAME = "tokens-all.png"
"""The file of the overlay, beside one `tokens-<source>.png` per source."""

BINS = 30
_INSTALL_HINT = "--png needs matplotlib: pip install 'journey-learning[plot]'"


def _file_name(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^\w.-]+", "-", name.removesuffix(".jsonl")).strip("-.") or "source"
    candidate, n = f"tokens-{stem}.png", 2
    while candidate in taken or candidate == OVERLAY_NAME:
        candidate, n = f"tokens-{stem}-{n}.png", n + 1
    taken.add(candidate)
    return candidate


def _edges(analyses: Sequence[SourceAnalysis]) -> list[float]:
    counts = [c for a in analyses for c in a.summary.token_counts]
    low, high = (float(min(counts)), float(max(counts))) if counts else (0.0, 1.0)
    if high == low:
        low, high = low - 0.5, high + 0.5
    step = (high - low) / BINS
    return [low + i * step for i in range(BINS + 1)]


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_token_histograms(
    analyses: Sequence[SourceAnalysis], directory: Path, *, tokenizer: str = "heuristic"
) -> list[Path]:
    """Write a token-length histogram per source and one overlay of all, as PNG files.

    Args:
        analyses: The sources, as `analyse_sources` returned them.
        directory: Where to write (created if missing): `tokens-<source>.png` per
            source, in order, then `tokens-all.png` (each source's share of its
            thoughts per bin, so sources of different sizes compare).
        tokenizer: Named on the x axis.

    Returns:
        The files written, the overlay last.

    Raises:
        ConfigError: matplotlib is not installed, or `directory` is a file.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import PercentFormatter
    except ImportError:
        raise ConfigError(_INSTALL_HINT) from None
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--png {str(directory)!r} is a file; give a directory")
    directory.mkdir(parents=True, exist_ok=True)
    edges = _edges(analyses)
    xlabel = f"tokens per thought ({tokenizer})"
    written: list[Path] = []
    taken: set[str] = set()
    for analysis in analyses:
        counts = analysis.summary.token_counts
        figure = Figure(figsize=(6.4, 4.0))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.hist(counts, bins=edges, color="tab:blue", alpha=0.8)
        if not counts:
            axes.text(0.5, 0.5, "no thoughts", ha="center", transform=axes.transAxes)
        axes.set_title(f"{analysis.name}: {len(counts)} thoughts")
        axes.set_xlabel(xlabel)
        axes.set_ylabel("thoughts")
        written.append(_save(figure, directory / _file_name(analysis.name, taken)))
    figure = Figure(figsize=(7.2, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for analysis in analyses:
        counts = analysis.summary.token_counts
        weights = [1 / len(counts)] * len(counts)
        label = f"{analysis.name} ({len(counts)})"
        axes.hist(counts, bins=edges, weights=weights, histtype="step", linewidth=1.5, label=label)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_title("Thought length by source")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("share of the source's thoughts")
    axes.legend(fontsize="small")
    written.append(_save(figure, directory / OVERLAY_NAME))
    return written
