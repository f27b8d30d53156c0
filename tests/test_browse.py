"""`journey browse`: the table model (filters, sorts, two runs, damaged index), the panes,
the summary command, and the Textual app driven by its pilot at 80x24."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_replay import FixtureRun, build_run
from typer.testing import CliRunner

from journey.cli import app as cli
from journey.errors import ConfigError, DatasetError
from journey.view.browse import (
    OutcomeClass,
    RunIndex,
    SessionFilter,
    SortKey,
    TranscriptSearch,
    compile_search,
    load_detail,
    load_run,
    outcome_class,
    pair_runs,
    sort_pairs,
    visible_pairs,
)
from journey.view.browse.panes import (
    conversation_pane,
    header_text,
    row_text,
    stats_line,
    transcript_pane,
    tree_pane,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return build_run(tmp_path_factory.mktemp("browse") / "run")


@pytest.fixture(scope="module")
def second_run(fixture_run: FixtureRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iteration 2: the same run without the max-turns session, plus a damaged index line."""
    root = tmp_path_factory.mktemp("browse2") / "run2"
    shutil.copytree(fixture_run.root, root)
    index = root / "sessions.jsonl"
    lines = index.read_text().splitlines()
    kept = [line for line in lines if fixture_run.max_turns.session_id not in line]
    index.write_text("\n".join([kept[0], '{"session_id": "cut sh', *kept[1:]]) + "\n")
    shutil.rmtree(root / "sessions" / fixture_run.max_turns.session_id)
    return root


@pytest.fixture(scope="module")
def run(fixture_run: FixtureRun) -> RunIndex:
    return load_run(fixture_run.root)


def _ids(pairs: list) -> list[str]:
    return [pair.session_id for pair in pairs]


# -- the model ------------------------------------------------------------------------------


def test_a_run_lists_finished_sessions_then_unfinished_ones(
    fixture_run: FixtureRun, run: RunIndex
) -> None:
    assert [row.session_id for row in run.rows] == [
        *(r.session_id for r in fixture_run.finished),
        fixture_run.crashed_id,
    ]
    journey, crashed = run.rows[2], run.rows[3]
    assert (journey.backtracks, journey.reflections, journey.depth) == (1, 1, 3)
    assert journey.thought_chars == len(run.contents().transcript(journey.session_id) or "")
    assert outcome_class(crashed) is OutcomeClass.UNFINISHED
    assert (crashed.turns, crashed.depth, crashed.truncated) == (1, 1, True)
    assert run.bad_lines == []


def test_damaged_index_lines_are_skipped_and_counted(second_run: Path) -> None:
    other = load_run(second_run)
    assert other.bad_lines == [2]
    assert len(other.rows) == 3  # two finished, one unfinished


def test_a_directory_that_is_no_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a run directory"):
        load_run(tmp_path)
    with pytest.raises(DatasetError, match="no run directory"):
        load_run(tmp_path / "missing")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (SessionFilter(outcome=OutcomeClass.CORRECT), ["solved", "journey"]),
        (SessionFilter(outcome=OutcomeClass.INCORRECT), ["max_turns"]),
        (SessionFilter(outcome=OutcomeClass.UNFINISHED), ["crashed"]),
        (SessionFilter(stop_reason="max_turns"), ["max_turns"]),
        (SessionFilter(min_backtracks=1), ["journey"]),
        (SessionFilter(outcome=OutcomeClass.CORRECT, min_backtracks=1), ["journey"]),
        (SessionFilter(), ["solved", "max_turns", "journey", "crashed"]),
    ],
)
def test_filters_on_the_index(
    fixture_run: FixtureRun, run: RunIndex, where: SessionFilter, expected: list[str]
) -> None:
    names = {
        fixture_run.solved.session_id: "solved",
        fixture_run.max_turns.session_id: "max_turns",
        fixture_run.journey.session_id: "journey",
        fixture_run.crashed_id: "crashed",
    }
    shown = visible_pairs(pair_runs(run.rows), where)
    assert [names[i] for i in _ids(shown)] == expected


def test_transcript_search_by_word_or_regex_is_cached(
    fixture_run: FixtureRun, run: RunIndex
) -> None:
    search = TranscriptSearch(run)
    progress: list[tuple[int, int]] = []
    wait = search.matching("wait", progress=lambda done, total: progress.append((done, total)))
    assert wait is not None and fixture_run.max_turns.session_id in wait
    assert fixture_run.solved.session_id not in wait
    boxed = search.matching(r"\\boxed\{12\}")
    assert boxed == {fixture_run.solved.session_id, fixture_run.journey.session_id}
    assert search.matching("wait") is wait  # the answer is cached
    where = SessionFilter(search="wait")
    shown = visible_pairs(pair_runs(run.rows), where, matches=wait)
    assert set(_ids(shown)) == wait


def test_a_word_matches_whole_words_and_a_bad_regex_is_a_config_error() -> None:
    assert compile_search("wait").search("Wait, that is wrong")
    assert not compile_search("wait").search("we await it")
    assert compile_search("let me").search("so let\nme see")
    with pytest.raises(ConfigError, match="bad search pattern"):
        compile_search("(unclosed")


def test_a_cancelled_search_gives_no_answer(run: RunIndex) -> None:
    many = RunIndex(run.root, run.rows * 300, run.summaries, run.unfinished)
    assert TranscriptSearch(many).matching("wait", cancelled=lambda: True) is None


def test_sorting_is_stable_and_by_the_chosen_run(
    fixture_run: FixtureRun, run: RunIndex, second_run: Path
) -> None:
    pairs = pair_runs(run.rows)
    by_turns = sort_pairs(pairs, SortKey.TURNS, descending=True)
    assert [p.a.turns for p in by_turns if p.a] == [5, 3, 2, 1]
    by_outcome = sort_pairs(pairs, SortKey.OUTCOME)
    assert by_outcome[-1].session_id == fixture_run.crashed_id
    assert sort_pairs(by_turns, SortKey.INDEX) == pairs
    two = pair_runs(run.rows, load_run(second_run).rows)
    by_b = sort_pairs(two, SortKey.TURNS, side=1)
    assert by_b[-1].session_id == fixture_run.max_turns.session_id  # B lacks it: last


def test_two_runs_pair_sessions_by_problem(
    fixture_run: FixtureRun, run: RunIndex, second_run: Path
) -> None:
    pairs = pair_runs(run.rows, load_run(second_run).rows)
    assert len(pairs) == 4
    missing = next(p for p in pairs if p.session_id == fixture_run.max_turns.session_id)
    assert missing.a is not None and missing.b is None
    assert all(p.b is not None for p in pairs if p is not missing)
    only_b = pair_runs(run.rows[:1], run.rows)
    assert [p.a is None for p in only_b] == [False, True, True, True]
    assert [p.index for p in only_b] == [0, 1, 2, 3]
    shown = visible_pairs(pairs, SessionFilter(outcome=OutcomeClass.INCORRECT), side=1)
    assert shown == []  # the failed session is not in the second run


# -- the panes ------------------------------------------------------------------------------


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_panes_of_a_finished_and_an_unfinished_session(
    fixture_run: FixtureRun, run: RunIndex
) -> None:
    journey = load_detail(run, run.rows[2])
    assert "(abandoned)" in _text(tree_pane(journey))
    assert "boxed{12}" in _text(transcript_pane(journey))
    talk = _text(conversation_pane(journey))
    assert "backtrack" in talk.lower() and "Critic" in talk
    crashed = load_detail(run, run.rows[3])
    assert crashed.final_node_id is None and crashed.tree is not None  # rebuilt from the log
    assert "cut short" in _text(conversation_pane(crashed))
    assert "unfinished" in _text(conversation_pane(crashed))


def test_table_lines_fit_their_width_and_mark_the_sort(run: RunIndex) -> None:
    for pair in pair_runs(run.rows):
        for width in (78, 120):
            assert row_text(pair, width, 1).cell_len == width - 1
    header = header_text(78, 1, SortKey.TOKENS, descending=True, side=0)
    assert "↓token" in header.plain and header.cell_len == 77
    two = pair_runs(run.rows, run.rows[:2])
    assert row_text(two[3], 78, 2).cell_len == 77
    assert "—" in row_text(two[3], 78, 2).plain
    assert "counting" in stats_line("run", None).plain
    assert "yield 67%" in stats_line("run", run.stats()).plain


# -- the command ----------------------------------------------------------------------------


def test_browse_without_a_terminal_prints_a_summary(fixture_run: FixtureRun) -> None:
    result = runner.invoke(
        cli, ["browse", str(fixture_run.root), "--outcome", "correct", "--sort", "turns"]
    )
    assert result.exit_code == 0, result.output
    assert "yield (solved / finished without error)" in result.output
    assert "2 of 4 sessions · filter: correct · sort: turns" in result.output
    listed = [line for line in result.output.splitlines() if "✓ solved" in line]
    assert [line.split()[1] for line in listed] == [
        fixture_run.journey.session_id[:8],
        fixture_run.solved.session_id[:8],
    ]


def test_browse_summary_of_two_runs_with_a_search(
    fixture_run: FixtureRun, second_run: Path
) -> None:
    result = runner.invoke(
        cli, ["browse", str(fixture_run.root), str(second_run), "--summary", "--search", "wait"]
    )
    assert result.exit_code == 0, result.output
    assert "Δ" in result.output
    assert "1 damaged lines of sessions.jsonl skipped (lines 2)" in result.output
    assert "filter: /wait/" in result.output


def test_browse_refuses_bad_options(fixture_run: FixtureRun, tmp_path: Path) -> None:
    bad_sort = runner.invoke(cli, ["browse", str(fixture_run.root), "--sort", "size"])
    assert isinstance(bad_sort.exception, ConfigError)
    assert "--sort takes one of" in str(bad_sort.exception)
    bad_outcome = runner.invoke(cli, ["browse", str(fixture_run.root), "--outcome", "good"])
    assert isinstance(bad_outcome.exception, ConfigError)
    no_run = runner.invoke(cli, ["browse", str(tmp_path)])
    assert isinstance(no_run.exception, DatasetError)


# -- the app, driven by Textual's pilot at 80x24 --------------------------------------------


@pytest.fixture
def browse_app() -> type:
    from journey.view.browse.app import BrowseApp

    return BrowseApp


def _screen_text(app: object) -> str:
    """The screen as plain text, one line per row."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join(strip.text for strip in strips)


async def _settle(pilot: object, app: object) -> None:
    """Wait for the workers (rates, search) and the delayed detail to finish: as long
    as it takes on a busy machine (up to 10 s), not a fixed pause."""
    for _ in range(200):
        await app.workers.wait_for_complete()  # type: ignore[attr-defined]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        if not app.detail_pending:  # type: ignore[attr-defined]
            break
    await app.workers.wait_for_complete()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_keys_move_sort_filter_and_open_panes(
    browse_app: type, fixture_run: FixtureRun, run: RunIndex
) -> None:
    app = browse_app([run])
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot, app)
        screen = _screen_text(app)
        assert all(len(line) <= 80 for line in screen.splitlines())
        assert "yield 67%" in screen and "4 of 4" in screen
        assert app.selected_pair().session_id == fixture_run.solved.session_id
        assert "There are 3 pens of 4 sheep" in _screen_text(app)  # the tree pane
        await pilot.press("down", "down")
        await _settle(pilot, app)
        assert app.selected_pair().session_id == fixture_run.journey.session_id
        assert "(abandoned)" in _screen_text(app)

        await pilot.press("s")  # outcome, then turns, biggest first
        await pilot.press("s")
        assert app.sort_key is SortKey.TURNS and app.descending
        assert [p.a.turns for p in app.shown] == [5, 3, 2, 1]
        assert app.selected_pair().session_id == fixture_run.journey.session_id  # kept
        await pilot.press("S")
        assert [p.a.turns for p in app.shown] == [1, 2, 3, 5]

        await pilot.press("o")  # correct only
        assert app.table_rows() == 2 and "filter: correct" in _screen_text(app)
        await pilot.press("b")
        assert _ids(app.shown) == [fixture_run.journey.session_id]
        await pilot.press("B", "x", "r")  # stop reasons in order: max_turns first
        assert _ids(app.shown) == [fixture_run.max_turns.session_id]
        assert "stop=max_turns" in _screen_text(app)
        await pilot.press("x")
        assert app.table_rows() == 4

        await pilot.press("3")
        await _settle(pilot, app)
        screen = _screen_text(app)
        assert app.selected_pair().session_id == fixture_run.max_turns.session_id
        assert "gold answer: 7" in screen and "Critic" not in screen  # below the fold
        await pilot.press("z")
        assert app.view_layout == "table"
        await pilot.press("z")
        await pilot.pause()
        assert app.view_layout == "detail" and "Critic" in _screen_text(app)
        await pilot.press("escape")
        assert app.view_layout == "split"
        await pilot.press("question_mark")
        await pilot.pause()
        assert "every key" in _screen_text(app)
        await pilot.press("escape")
        await pilot.press("q")
    assert not app.is_running


async def test_a_transcript_search_runs_in_a_worker(
    browse_app: type, fixture_run: FixtureRun, run: RunIndex
) -> None:
    app = browse_app([run])
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot, app)
        await pilot.press("slash", *"wait", "enter")
        await _settle(pilot, app)
        assert set(_ids(app.shown)) == TranscriptSearch(run).matching("wait")
        assert "filter: /wait/" in _screen_text(app)
        await pilot.press("slash", *"(bad", "enter")
        await pilot.pause()
        assert app.where.search == "wait"  # a bad regex leaves the filter as it was
        await pilot.press("slash", "ctrl+u", "enter")  # an empty search clears it
        await _settle(pilot, app)
        assert app.table_rows() == 4


async def test_two_runs_side_by_side(
    browse_app: type, fixture_run: FixtureRun, run: RunIndex, second_run: Path
) -> None:
    app = browse_app([run, load_run(second_run)], sort=SortKey.TURNS, descending=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot, app)
        screen = _screen_text(app)
        assert "A run: 4 sessions" in screen and "B run2: 3 sessions" in screen
        assert "by run A" in screen and "1 bad index lines skipped" in screen
        assert app.selected_pair().session_id == fixture_run.journey.session_id
        await pilot.press("2")
        await _settle(pilot, app)
        headings = [line for line in _screen_text(app).splitlines() if "181acdb2" in line]
        assert any("run ·" in line and "run2 ·" in line for line in headings)
        await pilot.press("a", "o", "o")  # run B, incorrect: none there
        assert app.table_rows() == 0 and "by run B" in _screen_text(app)
        await pilot.press("a")
        assert _ids(app.shown) == [fixture_run.max_turns.session_id]
        await pilot.press("q")


def test_browse_without_textual_is_a_one_line_error(
    fixture_run: FixtureRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "journey.view.browse.app", None)  # as if textual were missing
    monkeypatch.setattr("journey.cli.browse._interactive", lambda: True)
    result = runner.invoke(cli, ["browse", str(fixture_run.root)])
    assert isinstance(result.exception, ConfigError)
    assert "pip install 'textual" in str(result.exception)
