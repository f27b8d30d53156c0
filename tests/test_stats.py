"""`journey stats`: a run's numbers, exactly, and two runs side by side."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_replay import FixtureRun, build_run
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import DatasetError
from journey.longthought import LongThoughtWriter
from journey.protocols import Role
from journey.runs.stats import RunStats, keyword_pattern, read_run, run_stats
from journey.view.render import render_run_stats

runner = CliRunner()


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return build_run(tmp_path_factory.mktemp("stats") / "run")


@pytest.fixture(scope="module")
def small_run(fixture_run: FixtureRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture run's first session alone: solved, two turns, no reflection."""
    root = tmp_path_factory.mktemp("small") / "run"
    sid = fixture_run.solved.session_id
    shutil.copytree(fixture_run.root / "sessions" / sid, root / "sessions" / sid)
    first = (fixture_run.root / "sessions.jsonl").read_text().splitlines()[0]
    (root / "sessions.jsonl").write_text(first + "\n")
    return root


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_fixture_run_in_numbers(fixture_run: FixtureRun) -> None:
    stats = run_stats(read_run(fixture_run.root))
    assert (stats.sessions, stats.finished, stats.unfinished, stats.solved) == (4, 3, 1, 2)
    assert stats.yield_rate == 2 / 3
    assert stats.outcomes == {"solved": 2, "failed": 1}
    assert stats.stop_reasons == {"verified_answer": 2, "max_turns": 1}
    assert stats.mean_turns == (2 + 3 + 5) / 3
    assert stats.mean_backtracks == 1 / 3
    assert stats.mean_reflections == 1 / 3
    assert stats.mean_violations == 0.0
    assert stats.transcripts == 3
    # "wait": the max-turns session's first step and the journey's reflection; "hmm" and
    # "let me": the journey's reflections only. The crashed session is not counted.
    assert stats.keyword_rates == {"wait": 2 / 3, "hmm": 1 / 3, "let me": 1 / 3}
    lengths = [len(LongThoughtWriter().write(r.events)) for r in fixture_run.finished]
    assert stats.mean_transcript_chars == sum(lengths) / 3
    assert list(stats.tokens) == ["policy", "critic"]
    for role in (Role.POLICY, Role.CRITIC):
        used = [r.ended.usage[role] for r in fixture_run.finished]
        tokens = stats.tokens[role.value]
        assert tokens.prompt_tokens == sum(u.prompt_tokens for u in used) > 0
        assert tokens.completion_tokens == sum(u.completion_tokens for u in used) > 0
        assert tokens.prompt_per_session == tokens.prompt_tokens / 3
        assert tokens.completion_per_session == tokens.completion_tokens / 3
    # a solved session's cost carries the failed one's: every finished session's tokens / 2
    everything = [u for r in fixture_run.finished for u in r.ended.usage.values()]
    assert stats.tokens_per_solved == sum(u.total for u in everything) / 2
    generated = sum(u.completion_tokens for u in everything)
    assert stats.completion_tokens_per_solved == generated / 2


def test_keywords_are_whole_words_in_any_case() -> None:
    wait = keyword_pattern("wait")
    assert wait.search("Wait, step 2 is wrong.") and wait.search("WAIT")
    assert not wait.search("I awaited it") and not wait.search("waiting")
    let_me = keyword_pattern("let me")
    assert let_me.search("so, Let\n  me see") and not let_me.search("outlet meter")
    assert keyword_pattern("a+b").search("then a+b = 3")  # escaped, not a regex


def test_chosen_keywords(fixture_run: FixtureRun) -> None:
    stats = run_stats(read_run(fixture_run.root), keywords=["sheep", "stars", "nowhere"])
    assert stats.keyword_rates == {"sheep": 2 / 3, "stars": 1 / 3, "nowhere": 0.0}


def test_a_transcript_missing_on_disk_is_written_from_the_log(
    fixture_run: FixtureRun, tmp_path: Path
) -> None:
    root = tmp_path / "run"
    shutil.copytree(fixture_run.root, root)
    (root / "sessions" / fixture_run.journey.session_id / "transcript.md").unlink()
    stats = run_stats(read_run(root))
    assert stats.transcripts == 3 and stats.keyword_rates["hmm"] == 1 / 3


def test_a_session_indexed_twice_counts_once(
    fixture_run: FixtureRun, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "run"
    shutil.copytree(fixture_run.root, root)
    index = root / "sessions.jsonl"
    lines = index.read_text().splitlines()
    index.write_text("\n".join([*lines, lines[0], '{"session_id": "cut sho']) + "\n")
    with caplog.at_level("WARNING"):
        run = read_run(root)
    assert "1 unreadable line(s) skipped" in caplog.text  # counted and said, not silent
    assert [s.session_id for s in run.finished] == [
        fixture_run.max_turns.session_id,
        fixture_run.journey.session_id,
        fixture_run.solved.session_id,
    ]
    assert run_stats(run).model_dump(exclude={"run"}) == run_stats(
        read_run(fixture_run.root)
    ).model_dump(exclude={"run"})


def test_an_empty_run_has_no_means(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    stats = run_stats(read_run(tmp_path))
    assert stats.sessions == 0 and stats.yield_rate is None and stats.mean_turns is None
    assert stats.tokens_per_solved is None and stats.completion_tokens_per_solved is None
    assert stats.keyword_rates == {"wait": None, "hmm": None, "let me": None}
    assert stats.tokens == {}
    out = _text(render_run_stats([stats]))
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines[0] == tmp_path.name and "yield (solved / finished without error) —" in lines


def test_missing_run_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no run directory at"):
        read_run(tmp_path / "nope")
    result = runner.invoke(app, ["stats", str(tmp_path / "nope")])
    assert isinstance(result.exception, DatasetError)


def test_the_table(fixture_run: FixtureRun) -> None:
    stats = run_stats(read_run(fixture_run.root))
    lines = [" ".join(line.split()) for line in _text(render_run_stats([stats])).splitlines()]
    for row in [
        "sessions 4",
        "finished 3",
        "unfinished 1",
        "solved 2",
        "yield (solved / finished without error) 66.7%",
        "outcome · solved 2",
        "outcome · failed 1",
        "stop · verified answer 2",
        "stop · max turns 1",
        "mean turns 3.33",
        "mean backtracks 0.33",
        "mean reflections 0.33",
        "mean violations 0.00",
        'transcripts with "wait" 66.7%',
        'transcripts with "hmm" 33.3%',
        'transcripts with "let me" 33.3%',
        f"tokens · policy prompt {stats.tokens['policy'].prompt_tokens:,}",
        f"tokens · critic completion {stats.tokens['critic'].completion_tokens:,}",
    ]:
        assert row in lines


def test_two_runs_side_by_side(fixture_run: FixtureRun, small_run: Path) -> None:
    big = run_stats(read_run(fixture_run.root))
    small = run_stats(read_run(small_run))
    assert (small.sessions, small.yield_rate, small.outcomes) == (1, 1.0, {"solved": 1})
    out = _text(render_run_stats([big, small]))
    lines = [" ".join(line.split()) for line in out.splitlines()]
    # Both runs are named "run": their parents tell them apart.
    assert lines[0] == f"{fixture_run.root.parent.name}/run {small_run.parent.name}/run Δ"
    assert "sessions 4 1 -3" in lines
    assert "yield (solved / finished without error) 66.7% 100.0% +33.3 pp" in lines
    assert "outcome · failed 1 0 -1" in lines  # an outcome the small run never reached
    assert "mean turns 3.33 2.00 -1.33" in lines
    assert 'transcripts with "hmm" 33.3% 0.0% -33.3 pp' in lines
    assert "mean violations 0.00 0.00 +0.00" in lines
    out = _text(render_run_stats([big, small, small]))
    three = [" ".join(line.split()) for line in out.splitlines()]
    assert "Δ last−first" in out
    assert "sessions 4 1 1 -3" in three  # the last minus the first
    with pytest.raises(ValueError, match="at least one run"):
        render_run_stats([])


def test_the_stats_command(fixture_run: FixtureRun, small_run: Path) -> None:
    result = runner.invoke(app, ["stats", str(fixture_run.root)])
    assert result.exit_code == 0, result.output
    assert "yield (solved / finished without error)" in result.output and "66.7%" in result.output

    result = runner.invoke(app, ["stats", str(fixture_run.root), str(small_run)])
    assert result.exit_code == 0, result.output
    assert "Δ" in result.output and "+33.3 pp" in result.output

    runs = [str(fixture_run.root), str(small_run), str(fixture_run.root)]
    result = runner.invoke(app, ["stats", *runs, "--json"])
    assert result.exit_code == 0, result.output
    assert [item["sessions"] for item in json.loads(result.output)] == [4, 1, 4]


def test_stats_as_json(fixture_run: FixtureRun, small_run: Path) -> None:
    result = runner.invoke(app, ["stats", str(fixture_run.root), "--json", "--keyword", "let me"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    stats = RunStats.model_validate(data)
    assert stats == run_stats(read_run(fixture_run.root), keywords=["let me"])
    assert data["yield_rate"] == 2 / 3 and data["keyword_rates"] == {"let me": 1 / 3}

    result = runner.invoke(app, ["stats", str(fixture_run.root), str(small_run), "--json"])
    assert result.exit_code == 0, result.output
    both = [RunStats.model_validate(item) for item in json.loads(result.output)]
    assert [s.sessions for s in both] == [4, 1]
