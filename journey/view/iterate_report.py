"""`journey iterate`'s report as tables: the rounds' data, then every model evaluated."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Group, JustifyMethod
from rich.table import Table
from rich.text import Text

from journey.training.iterate_report import IterateReport, RoundReport

__all__ = ["render_arms", "render_iterate_report"]


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _short(spec: str, out: str) -> str:
    """A model trained here by its place in the iteration (`round-1/models/journey`)."""
    prefix = "hf:"
    if spec.startswith(prefix):
        path = Path(spec.removeprefix(prefix))
        if path.is_relative_to(out):
            return str(path.relative_to(out))
    return spec


def _rounds_table(report: IterateReport) -> Table:
    names = list(dict.fromkeys(row.name for r in report.rounds for row in r.sets + r.pairs))
    table = Table(
        title="rounds: synthesis and training sets",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="solved of finished sessions; tokens: all roles' per verified long thought; "
        "refl: reflections per session; then the rows of each set",
    )
    table.add_column("round", justify="right")
    table.add_column("policy", overflow="fold")
    table.add_column("solved", justify="right")
    table.add_column("yield", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("refl", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for entry in report.rounds:
        rows = {row.name: str(row.rows) for row in entry.sets + entry.pairs}
        synth = entry.synth
        reflections = synth.mean_reflections
        table.add_row(
            str(entry.round),
            Text(_short(entry.policy, report.out)),
            f"{synth.solved}/{synth.finished}",
            _rate(synth.yield_rate),
            _count(synth.tokens_per_solved),
            "—" if reflections is None else f"{reflections:.2f}",
            *(rows.get(name, "—") for name in names),
        )
    return table


def _points(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _evals_table(report: IterateReport) -> Table:
    table = Table(
        title="held-out evaluation",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=f"accuracy %: 95% Wilson interval; Δ base (points): paired bootstrap 95% "
        f"interval on shared problems, {report.resamples} resamples, seed {report.seed}; "
        "refl, back: outputs with reflection, backtracking words; tok: mean output tokens",
    )
    table.add_column("round", justify="right")
    table.add_column("model", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("accuracy [95% CI]", justify="right", no_wrap=True)
    table.add_column("Δ base [95% CI]", justify="right", no_wrap=True)
    table.add_column("refl", justify="right")
    table.add_column("back", justify="right")
    table.add_column("tok", justify="right")
    for entry in report.rounds:
        for row in entry.evals:
            low, high = _points(row.ci_low), _points(row.ci_high)
            difference = ""
            if row.difference is not None:
                difference = _points(row.difference, signed=True)
                if row.diff_low is not None:
                    difference += f" [{_points(row.diff_low, signed=True)}, "
                    difference += f"{_points(row.diff_high, signed=True)}]"
            table.add_row(
                str(entry.round),
                Text(row.name),
                str(row.problems),
                f"{_points(row.accuracy)} [{low}, {high}]",
                difference,
                f"{row.reflection_rate:.0%}",
                f"{row.backtrack_rate:.0%}",
                f"{row.mean_output_tokens:.0f}",
            )
    return table


def _gaps_lines(entry: RoundReport) -> list[Text]:
    return [
        Text(
            f"round {entry.round}: {gap.name} − {gap.reference} "
            f"{_points(gap.difference, signed=True)} points "
            f"[{_points(gap.low, signed=True)}, {_points(gap.high, signed=True)}] "
            f"on {gap.shared} shared problems"
        )
        for gap in entry.gaps
    ]


def render_iterate_report(report: IterateReport) -> Group:
    """The rounds side by side, then every evaluation, then the gaps between arms."""
    parts: list[Table | Text] = [_rounds_table(report), _evals_table(report)]
    for entry in report.rounds:
        parts += _gaps_lines(entry)
        parts += [Text(f"round {entry.round}: {note}", style="yellow") for note in entry.notes]
    return Group(*parts)


def _interval(value: float, low: float, high: float, *, signed: bool = False) -> str:
    points = [_points(v, signed=signed) for v in (value, low, high)]
    return f"{points[0]} [{points[1]}, {points[2]}]"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _table(title: str, columns: list[str], caption: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=caption,
    )
    for name in columns:
        justify: JustifyMethod = "left" if name == "arm" else "right"
        table.add_column(name, justify=justify, no_wrap=True)
    return table


def render_arms(report: IterateReport) -> Group:
    """Each arm over its seeds: accuracy and the gap to the first arm, then what the arm
    wrote and trained on, round by round."""
    scores = _table(
        "arms over seeds: accuracy",
        ["round", "arm", "seeds", "n", "accuracy [95% CI]", "Δ first [95% CI]"],
        "accuracy % (mean over seeds) and Δ first arm (points, paired by problem and seed): "
        f"95% bootstrap intervals over problems, {report.resamples} resamples",
    )
    walls = ", ".join(f"round {e.round} {e.wall_seconds:,.0f} s" for e in report.rounds)
    habits = _table(
        "arms over seeds: outputs and training",
        ["round", "arm", "self-corr", "marker", "tok", "rows", "tokens", "train s", "eval s"],
        "self-corr: correct outputs that reflect after a wrong claim; marker: outputs with a "
        "reflection marker; tok: mean output tokens; rows, tokens: trained on (mean per "
        f"seed); s: wall time, every seed together; the steps run: {walls}",
    )
    for entry in report.rounds:
        gaps = {gap.arm: gap for gap in entry.arm_gaps}
        for row in entry.arms:
            gap = gaps.get(row.arm)
            scores.add_row(
                str(entry.round),
                Text(row.arm),
                str(len(row.seeds)),
                str(row.problems),
                _interval(row.accuracy, row.ci_low, row.ci_high),
                "" if gap is None else _interval(gap.difference, gap.low, gap.high, signed=True),
            )
            habits.add_row(
                str(entry.round),
                Text(row.arm),
                f"{row.self_correction_rate:.1%}",
                f"{row.marker_rate:.0%}",
                f"{row.mean_output_tokens:.0f}",
                _number(row.mean_rows),
                _number(row.mean_tokens),
                _number(row.train_seconds),
                _number(row.eval_seconds),
            )
    return Group(scores, habits)
