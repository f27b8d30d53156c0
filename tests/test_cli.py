"""The command line: help, errors as one line, and a real debate on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journey.cli import app
from journey.protocols import ProblemPosed, SessionEnded
from journey.runs import RunDirectory

runner = CliRunner()


def journey(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point, as a user would."""
    return subprocess.run(
        [sys.executable, "-c", "from journey.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_help_shows_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "journey debate --demo" in result.output
    result = runner.invoke(app, ["debate", "--help"])
    assert result.exit_code == 0 and "--answer" in result.output and "Examples" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["debate", "2+2?", "--policy", "gpt5"], "unknown model spec 'gpt5'"),
        (["debate"], "give a PROBLEM, or --demo"),
        (["debate", "2+2?", "--max-turns", "0"], "max_turns must be at least 1, got 0"),
    ],
)
def test_user_errors_are_one_line_and_exit_nonzero(args: list[str], message: str) -> None:
    result = journey(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    result = journey(
        "debate", "2+2?", "--answer", "4", "--out", str(tmp_path / "run"),
        "--policy", "openai:m@http://127.0.0.1:9/v1?max_retries=0&timeout=2",
        "--critic", "openai:m@http://127.0.0.1:9/v1?max_retries=0&timeout=2",
        "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the session ends, recorded, not a crash
    [summary] = RunDirectory(tmp_path / "run").summaries()
    assert summary.outcome == "error" and summary.stop_reason == "model_error"


def test_debate_with_replayed_models_writes_a_run(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(["Step 1: 3 * 4 = 12, so \\boxed{12}."]))
    result = runner.invoke(
        app,
        ["debate", "--demo", "--policy", f"replay:{policy}", "--critic", f"replay:{policy}",
         "--out", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outcome"] == "solved" and summary["final_answer"] == "12"
    log = next((tmp_path / "run" / "sessions").glob("*/events.jsonl"))
    before = log.read_text()
    again = runner.invoke(
        app,
        ["debate", "--demo", "--policy", f"replay:{policy}", "--critic", f"replay:{policy}",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert again.exit_code == 1 and "already holds a debate of this problem" in str(again.exception)
    assert log.read_text() == before  # the first debate's log is left whole


@pytest.mark.embedded
def test_a_real_debate_on_the_embedded_model(tmp_path: Path) -> None:
    """The README's first command, with short limits: live output, files that parse back."""
    out = tmp_path / "run"
    result = journey(
        "debate", "--demo", "--out", str(out), "--max-turns", "2", "--step-tokens", "48"
    )
    assert result.returncode == 0, result.stderr
    assert "Problem" in result.stdout and "Policy · turn 1" in result.stdout
    assert "Session summary" in result.stdout
    run = RunDirectory(out)
    [summary] = run.summaries()
    log = run.load_events(summary.session_id)
    assert log.finished and not log.truncated and not log.bad_lines
    assert isinstance(log.events[0], ProblemPosed) and isinstance(log.events[-1], SessionEnded)
    assert log.events[0].models == {"policy": "embedded", "critic": "embedded"}
    tree = run.load_tree(summary.session_id)
    assert len(tree) == summary.nodes + 1 and summary.turns <= 2
    ended = log.events[-1]
    assert ended.usage["policy"].completion_tokens > 0
    transcript = (run.session_dir(summary.session_id) / "transcript.md").read_text()
    assert transcript.startswith("Step 1:")
