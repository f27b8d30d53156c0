"""User text is printed literally: never read as rich markup, wherever journey prints it.

Model specs, paths, dataset names, problems and model replies may hold `[`, `]`, `[/x]`
or `[@URL]`. Read as markup they vanish (`data[v2].jsonl` shown as `data.jsonl`) or crash
the print (`[/old]` closes no tag), so every test here puts such text through one way
journey prints and looks for it, character for character, in the output.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.console import Console
from rich.text import Text
from test_cli import journey
from typer.testing import CliRunner

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.cli import app
from journey.evaluation.compare import ComparedRun, Comparison
from journey.evaluation.metrics import AccuracyBucket, EvalMetrics
from journey.runs import RunDirectory
from journey.runs.stats import read_run, run_stats, session_overviews
from journey.runs.synthesis_report import SynthesisReport
from journey.sessions import DebateSession
from journey.view.render import render_run_stats, render_session_list
from journey.view.replay import ReplayOptions, replay_session
from journey.view.reports import render_comparison, render_metrics, render_synthesis_report

runner = CliRunner()

PROBLEM = "Is [bold]4[/bold] more than [/old] 3?"
STEPS = ["Step 1: [bold]4[/] > [/old] 3.", "Step 2: So [4] wins: \\boxed{4}."]
STEP = "[bold]4[/] > [/old] 3."
CRITIQUE = "VERDICT: correct\nACTION: continue\nREASON: Yes, [/old] [bold]4[/bold] wins."
SPEC = "replay:runs[/old]/policy[v2].json"


def _text(renderable: object, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _odd_dir(tmp_path: Path) -> Path:
    """A folder whose path reads `.../[/old]/data[v2]`: a closing tag and a bracketed name."""
    folder = tmp_path / "[" / "old]" / "data[v2]"
    folder.mkdir(parents=True)
    return folder


# -- one-line errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "literal"),
    [
        (["debate", "2+2?", "--policy", "openai:"], "'openai:MODEL[@URL]'"),
        (["debate", "2+2?", "--policy", "x[/old]"], "unknown model spec 'x[/old]'"),
        (["debate", "2+2?", "--critic", SPEC], "replay file 'runs[/old]/policy[v2].json'"),
        (["synth", "--dataset", "data[v2].jsonl", "--out", "unused"], "'data[v2].jsonl'"),
        (["synth", "--dataset", "[/old].jsonl", "--out", "unused"], "'[/old].jsonl'"),
        (["stats", "runs/[/old]/data[v2]"], "'runs/[/old]/data[v2]'"),
        (["replay", "runs/[/old]", "1"], "'runs/[/old]'"),
    ],
)
def test_errors_quote_user_text_literally(args: list[str], literal: str) -> None:
    result = journey(*args)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert literal in lines[0]


# -- help -----------------------------------------------------------------------------------


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_bracketed_help_text_is_shown() -> None:
    assert "Policy turns before the session stops [default: 16; 8 with --demo]." in _help("debate")
    assert "hf:NAME[:CONFIG][@SPLIT] or OWNER/NAME" in _help("eval")
    assert "dataset: hf:NAME[:CONFIG][@SPLIT] (NAME" in _help("synth")
    assert "<list[Path]>" in _help("browse")


def _commands(command: Any, path: str = "journey") -> Iterator[tuple[str, Any]]:
    """Each command and group under `command` (typer's own click classes), with its path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_no_help_text_loses_characters_to_markup() -> None:
    """Help strings are rich markup: a bracket must be written `\\[` to show."""
    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        texts = [command.help, command.epilog, *(getattr(p, "help", None) for p in command.params)]
        for text in filter(None, texts):
            shown = Text.from_markup(text).plain
            assert shown == text.replace("\\[", "["), f"{path}: {text!r} is shown as {shown!r}"
            checked += 1
    assert checked > 100  # every command, option and argument was looked at


# -- a session full of brackets -------------------------------------------------------------


async def _bracketed_session(root: Path) -> str:
    run = RunDirectory(root, meta={"command": "test"})
    session = DebateSession(
        PROBLEM,
        gold_answer="4",
        policy=PolicyAgent(ScriptedChatCompletionClient(STEPS)),
        critic=CriticAgent(ScriptedChatCompletionClient([CRITIQUE]), mode="generate"),
        models={"policy": SPEC, "critic": "openai:m[@URL]"},
    )
    with run.event_log(session.session_id) as log:
        result = await session.run(log.write)
    run.save(result)
    assert result.ended.outcome == "solved"
    return session.session_id


@pytest.fixture(scope="module")
def bracketed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run at `.../[/old]/data[v2]` of one solved session with markup-like text."""
    root = _odd_dir(tmp_path_factory.mktemp("markup"))
    return root, asyncio.run(_bracketed_session(root))


def test_a_replay_renders_problem_replies_and_specs_literally(
    bracketed_run: tuple[Path, str],
) -> None:
    root, session_id = bracketed_run
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    options = ReplayOptions(instant=True, tree=True, transcript=True, show_raw=True)
    replay_session(read_run(root), session_id, console, options)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert PROBLEM in out  # the problem panel and the tree's root
    assert out.count(STEP) >= 4  # step, raw reply, tree, long thought
    assert "Yes, [/old] [bold]4[/bold] wins." in out
    assert f"policy: {SPEC}" in out and "critic: openai:m[@URL]" in out
    listing = _text(render_session_list(session_overviews(read_run(root))), width=120)
    assert PROBLEM in listing


def test_the_replay_command_prints_bracketed_paths_and_text(
    bracketed_run: tuple[Path, str],
) -> None:
    root, _ = bracketed_run
    listing = runner.invoke(app, ["replay", str(root)], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    assert PROBLEM in listing.output
    assert f"Replay one: journey replay {root} 1" in listing.output
    shown = runner.invoke(app, ["replay", str(root), "1", "--no-delay", "--transcript"])
    assert shown.exit_code == 0, shown.output
    assert PROBLEM in shown.output and "Yes, [/old] [bold]4[/bold] wins." in shown.output


def test_browse_summary_prints_bracketed_paths(bracketed_run: tuple[Path, str]) -> None:
    root, _ = bracketed_run
    result = runner.invoke(app, ["browse", str(root), "--summary"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"{root} · 1 of 1 sessions" in result.output
    assert PROBLEM in result.output


def test_merge_prints_bracketed_source_paths(
    bracketed_run: tuple[Path, str], tmp_path: Path
) -> None:
    root, _ = bracketed_run
    out = tmp_path / "[/merged]"
    result = runner.invoke(
        app, ["merge", str(root), "--out", str(out)], env={"COLUMNS": "300"}, terminal_width=300
    )
    assert result.exit_code == 0, result.output
    assert str(root) in result.output and "merged run" in result.output
    assert (out / "sessions.jsonl").is_file()


def test_a_debate_shows_bracketed_problem_specs_and_run_folder(tmp_path: Path) -> None:
    folder = _odd_dir(tmp_path)
    policy, critic = folder / "policy.json", folder / "critic.json"
    policy.write_text(json.dumps(STEPS))
    critic.write_text(json.dumps([CRITIQUE]))
    result = runner.invoke(
        app,
        ["debate", PROBLEM, "--answer", "4", "--policy", f"replay:{policy}",
         "--critic", f"replay:{critic}", "--out", str(folder / "run")],
        env={"COLUMNS": "400"},  # the problem panel holds the long specs on one line
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PROBLEM in result.output and STEP in result.output
    assert "Yes, [/old] [bold]4[/bold] wins." in result.output
    assert f"policy: replay:{policy}" in result.output
    [summary] = RunDirectory(folder / "run").summaries()
    assert f"Saved to {folder / 'run' / 'sessions' / summary.session_id}" in result.output


# -- reports and tables ---------------------------------------------------------------------


def test_the_stats_table_shows_bracketed_keywords_and_run_names(
    bracketed_run: tuple[Path, str],
) -> None:
    root, _ = bracketed_run
    stats = run_stats(read_run(root), keywords=("[/old]", "[bold]"))
    out = _text(render_run_stats([stats]))
    assert 'transcripts with "[/old]"' in out and 'transcripts with "[bold]"' in out
    assert "data[v2]" in out  # the run's column
    result = runner.invoke(app, ["stats", str(root), "--keyword", "[/old]"])
    assert result.exit_code == 0, result.output
    assert 'transcripts with "[/old]"' in result.output


def test_the_synthesis_report_shows_a_bracketed_run_path() -> None:
    report = SynthesisReport(run_dir="runs/[/old]/data[v2]", strategy="debate", sessions=1)
    assert "runs/[/old]/data[v2]" in _text(render_synthesis_report(report))


def test_evaluation_tables_show_bracketed_models_and_names() -> None:
    bucket = AccuracyBucket(problems=1, correct=1, accuracy=1.0)
    metrics = EvalMetrics(
        model="hf:runs/[/old]",
        dataset="data[v2].jsonl",
        problems=1,
        correct=1,
        accuracy=1.0,
        by_level={"1": bucket},
        by_subject={"[bold]Algebra": bucket},
        mean_output_tokens=1.0,
        reflection_rate=0.0,
        mean_reflections=0.0,
        backtrack_rate=0.0,
        no_answer_rate=0.0,
        truncated_rate=0.0,
    )
    out = _text(render_metrics(metrics))
    assert "evaluation of hf:runs/[/old]" in out and "[bold]Algebra" in out
    run = ComparedRun(
        directory="evals/base[v2]",
        model="openai:m[@URL]",
        problems=1,
        accuracy=1.0,
        by_level={},
        shared=1,
        difference=None,
        ci_low=None,
        ci_high=None,
    )
    out = _text(render_comparison(Comparison(runs=[run], levels=[], resamples=100, seed=0)))
    assert "base[v2]" in out and "openai:m[@URL]" in out
