"""`journey label`: rollout estimates for a finished run, resumable, carried into PRM rows
with their source.

The run is made by the scripted beam policy and word critic of test_beam; the rollouts
by test_rollouts' completer (a "good" step reaches the answer 3 times in 4, a "bad" one
never).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from test_beam import SOLVED, ScriptedPolicy, word_critic
from test_rollouts import Completer
from typer.testing import CliRunner

from journey.agents import RolloutJudge, RolloutSettings, RolloutSpec
from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.exports import ExportOptions, export_runs
from journey.problems import load_problems
from journey.protocols import RolloutTally
from journey.runs import RunDirectory, SynthesisOptions, SynthesisRunner
from journey.runs.rollout_labels import (
    LABELS_DIR,
    ROLLOUT_LABELS,
    label_run,
    read_rollouts,
)
from journey.sessions import SessionLimits

completer = Completer()
"""For the CLI, as `function:test_label:completer`."""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished beam run of two problems, the second's log without its gold answer (a
    session posed with none, as `journey debate` can)."""
    lines = [
        {"problem": "What is 3 + 4?", "answer": "7"},
        {"problem": "What is 3 + 5?", "answer": "8"},
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    clients = {
        "policy": FunctionChatCompletionClient(ScriptedPolicy(SOLVED)),
        "critic": FunctionChatCompletionClient(word_critic),
    }
    options = SynthesisOptions(
        strategy="beam", critic_mode="generate", limits=SessionLimits(max_depth=3)
    )
    root = tmp_path / "run"
    asyncio.run(SynthesisRunner(options, clients=clients).run(root, load_problems(path).records))
    second = RunDirectory(root).summaries()[1].session_id
    events = root / "sessions" / second / "events.jsonl"
    lines_out = events.read_text(encoding="utf-8").splitlines()
    posed = json.loads(lines_out[0])
    assert posed["type"] == "problem_posed"
    lines_out[0] = json.dumps({**posed, "gold_answer": None})
    events.write_text("\n".join(lines_out) + "\n", encoding="utf-8")
    return root


def spec(samples: int = 4) -> RolloutSpec:
    return RolloutSpec(model="function:test_label:completer", settings=RolloutSettings(samples))


def label(root: Path, *, samples: int = 4, force: bool = False, reply=None):
    client = FunctionChatCompletionClient(reply or Completer())
    judge = RolloutJudge(client, RolloutSettings(samples))
    report = asyncio.run(
        label_run(RunDirectory(root), judge, spec(samples), concurrency=2, force=force)
    )
    return report, client


def test_every_step_but_final_answers_gets_an_estimate_and_a_rerun_asks_nothing(
    run_dir: Path,
) -> None:
    report, client = label(run_dir)
    assert report.skipped == {"no gold answer": 1}
    assert report.sessions == 1 and report.steps == report.labelled > 0
    assert len(client.requests) == 4 * report.labelled
    lines = (run_dir / LABELS_DIR / ROLLOUT_LABELS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == report.labelled
    estimates = read_rollouts(run_dir)
    tallies = [t for steps in estimates.sessions.values() for t in steps.values()]
    assert {t.correct for t in tallies} <= {0, 3}
    assert estimates.judge == str(spec())

    again, client = label(run_dir)
    assert (again.labelled, again.already, len(client.requests)) == (0, report.labelled, 0)


def test_a_job_killed_mid_line_resumes_with_the_lost_step_only(run_dir: Path) -> None:
    report, _ = label(run_dir)
    path = run_dir / LABELS_DIR / ROLLOUT_LABELS
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25], encoding="utf-8")
    assert read_rollouts(run_dir).unreadable == 1
    again, client = label(run_dir)
    assert (again.labelled, again.already) == (1, report.labelled - 1)
    assert len(client.requests) == 4


def test_another_judge_is_refused_unless_forced_and_then_the_old_labels_are_set_aside(
    run_dir: Path,
) -> None:
    label(run_dir)
    with pytest.raises(ConfigError, match="--force"):
        label(run_dir, samples=8)
    report, _ = label(run_dir, samples=8, force=True)
    assert report.already == 0 and report.labelled == report.steps
    kept = sorted(p.name for p in (run_dir / LABELS_DIR).glob("rollouts.*.jsonl"))
    assert len(kept) == 1
    assert read_rollouts(run_dir).judge == str(spec(8))


def test_a_failing_model_is_counted_and_its_steps_left_for_the_next_job(run_dir: Path) -> None:
    def down(messages: Sequence[LLMMessage]) -> str:
        raise ConnectionError("connection refused")

    report, _ = label(run_dir, reply=down)
    assert report.labelled == 0 and report.errors == report.steps
    assert report.stopped is None or "in a row" in report.stopped
    again, _ = label(run_dir)
    assert again.labelled == report.steps


def test_prm_rows_carry_the_estimates_beside_the_labels_with_their_source(
    run_dir: Path, tmp_path: Path
) -> None:
    label(run_dir)
    out = tmp_path / "prm.jsonl"
    card = export_runs([run_dir], out, ExportOptions(format="prm"))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows
    for row in rows:
        assert row["rollout_judge"] == str(spec())
        assert len(row["rollouts"]) == len(row["completions"]) == len(row["labels"])
        for estimate, source in zip(row["rollouts"], row["label_sources"], strict=True):
            if source == "verifier" or "3 + 5" in row["prompt"]:
                # A final answer is the verifier's; the session with no gold, unlabelled.
                assert estimate is None
            else:
                assert estimate is not None
                tally = RolloutTally(samples=estimate["samples"], correct=estimate["correct"])
                assert estimate["value"] == tally.value
    carried = sum(1 for row in rows for e in row["rollouts"] if e is not None)
    assert card.rollouts == {str(spec()): carried}


def test_prm_rows_of_an_unlabelled_run_have_no_rollout_columns(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prm.jsonl"
    card = export_runs([run_dir], out, ExportOptions(format="prm"))
    row = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert "rollouts" not in row and card.rollouts == {}


def test_the_command_labels_a_run_and_prints_the_counts(run_dir: Path) -> None:
    args = ["label", str(run_dir), "--rollouts", "2", "--model", "function:test_label:completer"]
    result = CliRunner().invoke(app, [*args, "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labelled"] == report["steps"] > 0
    assert report["judge"].startswith("rollout:function:test_label:completer?n=2")
    missing = CliRunner().invoke(app, ["label", str(run_dir / "nope")])
    assert isinstance(missing.exception, DatasetError)
    assert "not a run directory" in str(missing.exception)


policy = ScriptedPolicy(SOLVED)
"""For the CLI, as `function:test_label:policy`."""


def test_a_debate_on_the_command_line_can_be_judged_by_rollouts(tmp_path: Path) -> None:
    args = ["debate", "What is 3 + 4?", "--answer", "7", "--out", str(tmp_path / "run")]
    models = ["--policy", "function:test_label:policy"]
    models += ["--critic", "rollout:function:test_label:completer?n=2"]
    result = CliRunner().invoke(app, [*args, *models, "--json"])
    assert result.exit_code == 0, result.output
    run = RunDirectory(tmp_path / "run")
    events = (run.session_dir(run.summaries()[0].session_id) / "events.jsonl").read_text()
    verdicts = [json.loads(line) for line in events.splitlines() if '"critic_verdict"' in line]
    assert verdicts and all(v["rollouts"]["samples"] == 2 for v in verdicts)
    posed = json.loads(events.splitlines()[0])
    assert posed["models"]["critic"].startswith("rollout:function:test_label:completer?n=2")
