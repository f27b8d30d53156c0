"""`journey eval compare --plot`: the chart file, its intervals, and the missing-extra error."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError
from journey.evaluation import compare_runs
from journey.evaluation.compare import wilson_interval
from journey.evaluation.plot import plot_comparison
from tests.test_evaluation import _write_run

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    base = _write_run(tmp_path / "base", [True, False, False, False, True, False], "embedded")
    sft = _write_run(tmp_path / "sft", [True, True, True, False, True], "hf:models/sft")
    return base, sft


def test_wilson_interval_stays_in_range_and_brackets_the_rate() -> None:
    low, high = wilson_interval(3, 4)
    assert 0 < low < 0.75 < high < 1
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(0, 5)[1] > 0
    assert wilson_interval(5, 5)[1] == pytest.approx(1.0) and wilson_interval(5, 5)[0] < 1
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_compare_keeps_the_counts_behind_each_level(tmp_path: Path) -> None:
    comparison = compare_runs(list(_two_runs(tmp_path)), resamples=200)
    base, sft = comparison.runs
    assert (base.correct, base.problems) == (2, 6) and sft.correct == 4
    assert sft.level_counts["1"].problems == 3 and sft.level_counts["1"].correct == 3


def test_compare_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    base, sft = _two_runs(tmp_path)
    chart = tmp_path / "charts" / "by-level.png"
    result = runner.invoke(
        app, ["eval", "compare", str(base), str(sft), "--resamples", "200", "--plot", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.output and f"plot saved to {chart}" in result.output
    data = chart.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert 5_000 < len(data) < 2_000_000  # a real figure, not an empty canvas


def test_compare_plot_leaves_json_output_parseable(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    base, sft = _two_runs(tmp_path)
    chart = tmp_path / "c.svg"
    result = runner.invoke(
        app, ["eval", "compare", str(base), str(sft), "--json", "--plot", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["runs"]) == 2
    assert "plot saved to" in result.stderr
    assert chart.read_text().lstrip().startswith("<?xml")


def test_plot_rejects_an_unknown_format(tmp_path: Path) -> None:
    comparison = compare_runs(list(_two_runs(tmp_path)), resamples=200)
    with pytest.raises(ConfigError, match=r"must end in one of \.png"):
        plot_comparison(comparison, tmp_path / "chart.bmpx")


def test_missing_matplotlib_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    base, sft = _two_runs(tmp_path)
    chart = tmp_path / "chart.png"
    result = runner.invoke(app, ["eval", "compare", str(base), str(sft), "--plot", str(chart)])
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert "\n" not in message and "pip install 'journey-learning[plot]'" in message
    assert not chart.exists()
