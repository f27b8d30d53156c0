"""`journey analyze` on a smoothed run: the accepted rewrites by default, the drafts with
`--thought draft`, and in every output how many thoughts of each version a run gave."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from test_analyze import render, row, write_lines
from test_replay import FixtureRun, build_run
from typer.testing import CliRunner

from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError
from journey.evaluation.thought_analysis import ThoughtVersion, analyse_sources
from journey.evaluation.thought_sources import read_thought_source
from journey.longthought import Smoother
from journey.runs import RunDirectory, smooth_run
from journey.view.analysis_report import render_thought_analysis

runner = CliRunner()

# The fixture's solved session drafts "Step 1: There are 3 pens of 4 sheep. / Step 2:
# 3 * 4 = 12, so \boxed{12}." A faithful rewrite of it is accepted; the journey's
# rewrite changes its answer and is rejected (its draft stays); the failed session is
# never smoothed.
FAITHFUL = "There are 3 pens, each holding 4 sheep, so 3 * 4 = 12 sheep: \\boxed{12}."


def rewriter(messages: Sequence[LLMMessage]) -> str:
    draft = str(messages[-1].content)
    if "go back to step 1" in draft:
        return "There are 3 pens and 3 + 4 = 7, so \\boxed{7}."
    return FAITHFUL


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[FixtureRun, Path]:
    """The fixture run, and a copy of it that `journey smooth`'s job has smoothed."""
    fixture = build_run(tmp_path_factory.mktemp("drafts") / "run")
    smoothed = tmp_path_factory.mktemp("smoothed") / "smoothed"
    shutil.copytree(fixture.root, smoothed)
    smoother = Smoother(FunctionChatCompletionClient(rewriter))
    tally = asyncio.run(smooth_run(RunDirectory(smoothed), smoother, model="function:x"))
    assert (tally.accepted, tally.rejected) == (1, 1)
    return fixture, smoothed


def drafts(fixture: FixtureRun) -> list[str]:
    folders = [fixture.root / "sessions" / r.session_id for r in fixture.finished]
    return [(f / "transcript.md").read_text().rstrip("\n") for f in folders]


def test_a_smoothed_run_gives_its_accepted_rewrites_by_default(
    runs: tuple[FixtureRun, Path],
) -> None:
    fixture, smoothed = runs
    solved, max_turns, journey = drafts(fixture)
    source = read_thought_source(smoothed)
    assert source.texts == [FAITHFUL, max_turns, journey]  # the rejected rewrite: its draft
    assert source.versions == {"smoothed": 1, "draft": 2}
    draft = read_thought_source(smoothed, thought=ThoughtVersion.DRAFT)
    assert draft.texts == [solved, max_turns, journey]
    assert draft.versions == {"smoothed": 0, "draft": 3}
    assert read_thought_source(fixture.root).versions == {"smoothed": 0, "draft": 3}
    assert read_thought_source(smoothed, limit=1).versions == {"smoothed": 1, "draft": 0}


def test_the_table_says_which_thought_each_source_gave(
    runs: tuple[FixtureRun, Path], tmp_path: Path
) -> None:
    fixture, smoothed = runs
    export = write_lines(
        tmp_path / "sft.jsonl", [{"messages": [{"role": "assistant", "content": "Step 1: a"}]}]
    )
    analyses = analyse_sources([smoothed, fixture.root, export])
    text = render(render_thought_analysis(analyses))
    assert row(text, "thoughts · smoothed") == ["1", "0", "—"]  # an export is as it is
    assert row(text, "thoughts · draft") == ["2", "3", "—"]
    assert "tokens: heuristic · run thoughts: smoothed" in text
    # the rewrite, one line, was measured in place of the draft's three
    assert analyses[0].summary.lines.mean < analyses[1].summary.lines.mean
    plain = render(render_thought_analysis(analyse_sources([export])))
    assert "thoughts · smoothed" not in plain and "run thoughts" not in plain


def test_the_command_reads_the_draft_when_asked(runs: tuple[FixtureRun, Path]) -> None:
    _, smoothed = runs
    default = runner.invoke(app, ["analyze", str(smoothed)])
    assert default.exit_code == 0, default.output
    assert row(default.stdout, "thoughts · smoothed") == ["1"]
    draft = runner.invoke(app, ["analyze", str(smoothed), "--thought", "draft"])
    assert draft.exit_code == 0, draft.output
    assert row(draft.stdout, "thoughts · smoothed") == ["0"]
    assert row(draft.stdout, "thoughts · draft") == ["3"]
    assert "run thoughts: draft" in draft.stdout


def test_json_names_the_version_of_every_run_thought(
    runs: tuple[FixtureRun, Path], tmp_path: Path
) -> None:
    _, smoothed = runs
    column = write_lines(tmp_path / "c.jsonl", [{"text": "wait, so"}])
    for thought, versions in (("smoothed", {"smoothed": 1, "draft": 2}), ("draft", None)):
        args = [str(smoothed), str(column), "--column", "text", "--thought", thought]
        result = runner.invoke(app, ["analyze", *args, "--json"])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["thought"] == thought
        run, plain = document["sources"]
        assert run["thought_versions"] == (versions or {"smoothed": 0, "draft": 3})
        assert plain["thought_versions"] == {}


def test_an_unknown_thought_is_a_config_error(runs: tuple[FixtureRun, Path]) -> None:
    result = runner.invoke(app, ["analyze", str(runs[1]), "--thought", "final"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "--thought takes smoothed or draft; got 'final'"
