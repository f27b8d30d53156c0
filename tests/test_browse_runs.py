"""`journey browse` with three runs and more (iterations 1, 2, 3 of a run): problems
matched across every run, table lines that fit any number of runs, the summary's side by
side listing, and the app's columns, panes and `a` key, driven by Textual's pilot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_browse import _screen_text, _settle
from test_replay import FixtureRun, build_run
from typer.testing import CliRunner

from journey.cli import app as cli
from journey.errors import ConfigError
from journey.view.browse import (
    MAX_RUNS,
    OutcomeClass,
    RunIndex,
    SessionFilter,
    SortKey,
    load_run,
    pair_runs,
    run_label,
    sort_pairs,
    visible_pairs,
)
from journey.view.browse.panes import MIN_PROBLEM_CHARS, header_text, row_text

runner = CliRunner()


def _copy(fixture: FixtureRun, root: Path, *, drop: str, solve: str | None = None) -> Path:
    """The fixture run without session `drop`, and with session `solve` solved."""
    shutil.copytree(fixture.root, root)
    index = root / "sessions.jsonl"
    lines = []
    for line in index.read_text().splitlines():
        row = json.loads(line)
        if row["session_id"] == drop:
            continue
        if row["session_id"] == solve:
            row.update(outcome="solved", stop_reason="verified_answer")
        lines.append(json.dumps(row))
    index.write_text("\n".join(lines) + "\n")
    shutil.rmtree(root / "sessions" / drop)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[FixtureRun, list[Path]]:
    """Three iterations: the fixture run; without its failed session; without its first
    solved session but with the failed one solved."""
    fixture = build_run(tmp_path_factory.mktemp("it") / "run")
    second = _copy(
        fixture, tmp_path_factory.mktemp("it") / "run2", drop=fixture.max_turns.session_id
    )
    third = _copy(
        fixture,
        tmp_path_factory.mktemp("it") / "run3",
        drop=fixture.solved.session_id,
        solve=fixture.max_turns.session_id,
    )
    return fixture, [fixture.root, second, third]


@pytest.fixture(scope="module")
def indexes(runs: tuple[FixtureRun, list[Path]]) -> list[RunIndex]:
    return [load_run(path) for path in runs[1]]


def _ids(pairs: list) -> list[str]:
    return [pair.session_id for pair in pairs]


# -- the model ------------------------------------------------------------------------------


def test_three_runs_are_matched_problem_by_problem(
    runs: tuple[FixtureRun, list[Path]], indexes: list[RunIndex]
) -> None:
    fixture, _ = runs
    pairs = pair_runs(*(run.rows for run in indexes))
    assert [len(p.sides) for p in pairs] == [3, 3, 3, 3]
    by_id = {p.session_id: p for p in pairs}
    solved, failed = by_id[fixture.solved.session_id], by_id[fixture.max_turns.session_id]
    assert [row is None for row in solved.sides] == [False, False, True]
    assert [row is None for row in failed.sides] == [False, True, False]
    assert failed.side(2) is not None and failed.side(2).outcome == "solved"
    rows = indexes[0].rows
    later = pair_runs(rows[:1], rows[:2], rows)  # sessions only later runs have come last
    assert [p.index for p in later] == [0, 1, 2, 3]
    assert [sum(row is not None for row in p.sides) for p in later] == [3, 2, 1, 1]
    assert later[1].a is None and later[1].b is rows[1] and later[1].side(5) is None


def test_filters_and_sorting_look_at_the_chosen_run(
    runs: tuple[FixtureRun, list[Path]], indexes: list[RunIndex]
) -> None:
    fixture, _ = runs
    pairs = pair_runs(*(run.rows for run in indexes))
    correct = SessionFilter(outcome=OutcomeClass.CORRECT)
    assert set(_ids(visible_pairs(pairs, correct, side=2))) == {
        fixture.max_turns.session_id,
        fixture.journey.session_id,
    }
    by_turns = sort_pairs(pairs, SortKey.TURNS, descending=True, side=2)
    assert by_turns[-1].session_id == fixture.solved.session_id  # run C lacks it: last


def test_table_lines_of_any_number_of_runs_fit_their_width(indexes: list[RunIndex]) -> None:
    rows = indexes[0].rows
    for runs in (2, 3, 4, 5, 8):
        pairs = pair_runs(*([rows] * runs))
        for width in (78, 120):
            header = header_text(width, runs, SortKey.INDEX, descending=False, side=0)
            assert header.cell_len == width - 1, (runs, width)
            for pair in pairs:
                line = row_text(pair, width, runs)
                assert line.cell_len == width - 1, (runs, width)
                problem = line.plain[9:].split("  ")[0]
                assert len(problem) >= MIN_PROBLEM_CHARS  # never squeezed to nothing
    three = header_text(78, 3, SortKey.OUTCOME, descending=True, side=2).plain
    assert "(A | B | C)" in three and " A  turn" in three and " C↓ turn" in three
    assert "outcome" in header_text(120, 3, SortKey.INDEX, descending=False, side=0).plain
    four = header_text(78, 4, SortKey.THOUGHT, descending=True, side=3).plain
    assert four.split()[-2:] == ["D", "↓chars"] and "turn" not in four
    line = row_text(pair_runs(rows, rows[:1], rows)[1], 78, 3).plain
    assert line.split()[-9:] == ["✗", "3", "94", "—", "—", "—", "✗", "3", "94"]
    assert [run_label(i) for i in (0, 1, 25)] == ["A", "B", "Z"]
    with pytest.raises(ValueError, match="A to Z"):
        run_label(MAX_RUNS)


# -- the summary ----------------------------------------------------------------------------


def test_the_summary_of_three_runs_lists_problems_side_by_side(
    runs: tuple[FixtureRun, list[Path]],
) -> None:
    fixture, paths = runs
    result = runner.invoke(cli, ["browse", *map(str, paths), "--summary"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("Δ last−first" in line for line in lines)  # the rates, a column per run
    assert "4 of 4 problems · filter: all · sort: index · by run A" in result.output
    assert "A run · B run2 · C run3" in result.output
    header = next(line for line in lines if line.startswith("session  problem"))
    assert "(A | B | C)" in header
    listed = lines[lines.index(header) + 1 :]
    assert [line.split()[0] for line in listed] == [
        fixture.solved.session_id[:8],
        fixture.max_turns.session_id[:8],
        fixture.journey.session_id[:8],
        fixture.crashed_id[:8],
    ]
    solved = listed[0].split()
    assert solved[-9:] == ["✓", "2", "72", "✓", "2", "72", "—", "—", "—"]
    assert all(len(line) <= 80 for line in listed)


def test_the_summary_filters_and_sorts_by_the_run_chosen(
    runs: tuple[FixtureRun, list[Path]],
) -> None:
    fixture, paths = runs
    args = ["browse", *map(str, paths), "--summary", "--outcome", "correct", "--sort", "turns"]
    result = runner.invoke(cli, [*args, "--by", "C", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "2 of 4 problems · filter: correct · sort: turns · by run C" in result.output
    assert "… and 1 more (--limit)" in result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("session  problem"))
    assert lines[header + 1].split()[0] == fixture.journey.session_id[:8]  # 5 turns in C
    assert lines[header + 2].startswith("…")
    by_number = runner.invoke(cli, [*args, "--by", "3"])
    assert "by run C" in by_number.output
    for by in ("D", "0", "AB"):
        bad = runner.invoke(cli, [*args, "--by", by])
        assert isinstance(bad.exception, ConfigError)
        assert str(bad.exception) == (
            f"--by takes a run's letter (A to C) or number (1 to 3); got {by!r}"
        )


def test_too_many_runs_are_refused(runs: tuple[FixtureRun, list[Path]]) -> None:
    paths = [str(runs[1][0])] * (MAX_RUNS + 1)
    result = runner.invoke(cli, ["browse", *paths, "--summary"])
    assert isinstance(result.exception, ConfigError)
    assert "compares at most 26 runs; got 27" in str(result.exception)


# -- the app, driven by Textual's pilot at 80x24 --------------------------------------------


async def test_three_runs_side_by_side_in_the_app(
    runs: tuple[FixtureRun, list[Path]], indexes: list[RunIndex]
) -> None:
    from journey.view.browse.app import BrowseApp

    fixture, _ = runs
    app = BrowseApp(indexes)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot, app)
        screen = _screen_text(app)
        assert all(len(line) <= 80 for line in screen.splitlines())
        for rates in ("A run: 4 sessions", "B run2: 3 sessions", "C run3: 3 sessions"):
            assert rates in screen
        assert "(A | B | C)" in screen and "by run A" in screen
        assert app.table_rows() == 4
        assert app.selected_pair().session_id == fixture.solved.session_id
        await pilot.press("2")
        await _settle(pilot, app)
        headings = _screen_text(app).splitlines()
        [line] = [line for line in headings if "A run ·" in line]
        assert "B run2 ·" in line and "C run3: no session" in line  # a pane per run

        await pilot.press("a", "a", "o")  # run C, correct only: its solved "failure" too
        assert "by run C" in _screen_text(app) and app.side == 2
        assert set(_ids(app.shown)) == {fixture.max_turns.session_id, fixture.journey.session_id}
        await pilot.press("a")  # back to run A
        await _settle(pilot, app)
        assert app.side == 0 and "by run A" in _screen_text(app)
        assert set(_ids(app.shown)) == {fixture.solved.session_id, fixture.journey.session_id}
        await pilot.press("q")
    assert not app.is_running


async def test_the_app_starts_by_the_run_asked(indexes: list[RunIndex]) -> None:
    from journey.view.browse.app import BrowseApp

    app = BrowseApp(indexes, side=1, where=SessionFilter(outcome=OutcomeClass.INCORRECT))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot, app)
        assert "by run B" in _screen_text(app) and app.table_rows() == 0  # B never failed
        await pilot.press("q")
    with pytest.raises(ValueError, match=r"side must be 0 to 2 \(a run's index\), got 3"):
        BrowseApp(indexes, side=3)
