"""Run budgets: `--budget-tokens` and `--budget-usd` stop a run gracefully (no new
session, those in flight cut at a turn boundary, their logs left open), the report
says why, and running again finishes exactly the sessions an unbudgeted run writes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_runner import KINDS, dataset, logs, options
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError
from journey.protocols import StopReason
from journey.runs import RunDirectory, SynthesisReport, SynthesisRunner, read_event_log
from journey.runs.spend import RunBudget, recorded_spend
from journey.sessions import MaxTurns, SessionProgress, StopRequested

POLICY = "function:test_runner:fake_policy?price_in=1&price_out=2"
CRITIC = "function:test_runner:fake_critic?price_in=1&price_out=2"
SLOW_POLICY = "function:test_runner:slow_policy?price_in=1&price_out=2"
SLOW_CRITIC = "function:test_runner:slow_critic?price_in=1&price_out=2"
SOLVABLE = tuple(kind for kind in KINDS if kind not in ("explode",))


def synthesise(out: Path, budget: RunBudget | None = None, **kw: Any) -> SynthesisReport:
    problems = dataset(out.parent / "d.jsonl", SOLVABLE)
    settings = {"policy": POLICY, "critic": CRITIC, "budget": budget or RunBudget(), **kw}
    return asyncio.run(SynthesisRunner(options(**settings)).run(out, problems))


def spent(run: Path) -> int:
    return sum(used.total for used in recorded_spend(run).values())


def open_logs(run: Path) -> dict[str, list[str]]:
    """The event types of each session that has a log but no index line."""
    indexed = {s.session_id for s in RunDirectory(run).summaries()}
    return {
        folder.name: [e.type for e in read_event_log(folder / "events.jsonl").events]
        for folder in sorted((run / "sessions").iterdir())
        if folder.name not in indexed
    }


def test_a_token_budget_stops_the_run_and_a_rerun_finishes_it_as_if_uncut(
    tmp_path: Path,
) -> None:
    whole = synthesise(tmp_path / "whole", concurrency=1)
    assert whole.stopped is None and whole.finished == len(SOLVABLE)

    run = tmp_path / "cut"
    cut = synthesise(run, RunBudget(tokens=150), concurrency=1)
    # The first turn of the first session (policy step + verdict) spends the budget; the
    # session stops before its second turn, and no other session starts.
    used = spent(run)
    assert 150 <= used < 400
    assert cut.stopped == (
        f"budget: 150 tokens spent ({used:,} used); {len(SOLVABLE)} sessions left: "
        f"run the same command again to resume {run}"
    )
    assert (cut.ran, cut.finished, cut.solved) == (0, 0, 0)
    assert RunDirectory(run).summaries() == []
    assert list(open_logs(run).values()) == [
        ["problem_posed", "policy_step", "critic_verdict", "action_applied"]
    ]
    assert json.loads((run / "run.json").read_text())["budget"] == {"tokens": 150}

    rounds = 1
    while (again := synthesise(run, RunBudget(tokens=1000), concurrency=1)).stopped:
        rounds += 1
        assert again.stopped.startswith("budget: 1,000 tokens spent")
    assert rounds > 2 and again.finished == len(SOLVABLE) and again.ran >= 1
    assert logs(run) == logs(tmp_path / "whole")  # the same sessions, event for event
    assert spent(run) == spent(tmp_path / "whole")  # and no request paid twice


def test_sessions_in_flight_stop_at_a_turn_boundary(tmp_path: Path) -> None:
    run = tmp_path / "cut"
    report = synthesise(run, RunBudget(tokens=600), concurrency=3, policy=SLOW_POLICY,
                        critic=SLOW_CRITIC)  # fmt: skip
    assert report.stopped is not None and report.finished < len(SOLVABLE)
    cut = open_logs(run)
    assert cut, "sessions in flight were cut"
    for types in cut.values():
        assert types[-1] in ("action_applied", "problem_posed"), types  # between turns
        assert "session_ended" not in types
    for summary in RunDirectory(run).summaries():
        assert summary.stop_reason != StopReason.CANCELLED
    finish = synthesise(run, concurrency=3, policy=SLOW_POLICY, critic=SLOW_CRITIC)
    assert finish.stopped is None and finish.resumed == len(cut)
    assert finish.finished == len(SOLVABLE)


def test_a_usd_budget_stops_at_its_cost(tmp_path: Path) -> None:
    run = tmp_path / "run"
    report = synthesise(run, RunBudget(usd=0.0005), concurrency=1)
    assert report.cost_usd is not None and report.cost_usd >= 0.0005
    assert report.stopped is not None
    assert report.stopped.startswith(f"budget: $0.0005 spent (${report.cost_usd:.4f} used);")
    used = recorded_spend(run)
    assert report.cost_usd == pytest.approx(
        sum(u.total + u.completion_tokens for u in used.values()) / 1e6
    )


def test_a_usd_budget_needs_every_roles_price() -> None:
    unpriced = "function:test_runner:fake_critic"
    error = r"--budget-usd needs every role's price: no price for the critic \(test_runner:fake"
    with pytest.raises(ConfigError, match=error):
        SynthesisRunner(options(policy=POLICY, critic=unpriced, budget=RunBudget(usd=1.0)))


@pytest.mark.parametrize(
    ("budget", "error"),
    [({"tokens": 0}, "token budget must be at least 1, got 0"),
     ({"usd": 0.0}, "USD budget must be more than 0, got 0.0")],
)  # fmt: skip
def test_a_budget_must_be_positive(budget: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        RunBudget(**budget)


def test_a_stop_requested_yields_to_the_limits() -> None:
    asked = StopRequested(lambda: True)
    progress = SessionProgress(turns=6, generated_tokens=0, depth=1)
    assert asked.check(progress) is StopReason.CANCELLED
    assert (MaxTurns(6) | asked).check(progress) is StopReason.MAX_TURNS
    assert StopRequested(lambda: False).check(progress) is None


def test_the_synth_command_takes_budgets_and_says_why_it_stopped(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ("plain", "reflect"))
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY, "--critic", CRITIC, "--critic-mode", "generate",
            "--concurrency", "1", "--no-progress"]  # fmt: skip
    runner = CliRunner()
    stopped = runner.invoke(app, [*args, "--budget-tokens", "150", "--json"])
    assert stopped.exit_code == 0, stopped.output
    report = json.loads(stopped.stdout)
    assert report["stopped"].startswith("budget: 150 tokens spent") and report["finished"] == 0
    table = runner.invoke(app, [*args, "--budget-usd", "0.0001"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "stopped: budget: $0.0001 spent" in " ".join(table.stderr.split())
    assert "cost" in table.stdout
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0 and json.loads(done.stdout)["finished"] == 2
    wrong = runner.invoke(app, [*args, "--budget-tokens", "-3"])
    assert wrong.exit_code != 0 and "token budget must be at least 1, got -3" in str(
        wrong.exception
    )


def test_a_beam_search_cut_by_the_budget_resumes_to_the_same_tree(tmp_path: Path) -> None:
    from test_beam import PROBLEM, SOLVED, ScriptedPolicy, word_critic

    from journey.agents.backends import FunctionChatCompletionClient
    from journey.problems import load_problems
    from journey.runs import SynthesisOptions
    from journey.sessions import SessionLimits

    (tmp_path / "d.jsonl").write_text(json.dumps({"problem": PROBLEM, "answer": "7"}) + "\n")
    problems = load_problems(tmp_path / "d.jsonl").records

    def beam(out: Path, budget: RunBudget | None = None) -> SynthesisReport:
        clients = {
            "policy": FunctionChatCompletionClient(ScriptedPolicy(SOLVED)),
            "critic": FunctionChatCompletionClient(word_critic),
        }
        settings = SynthesisOptions(
            strategy="beam",
            policy="function:test_beam:word_critic",
            critic="function:test_beam:word_critic",
            critic_mode="generate",
            limits=SessionLimits(max_depth=3),
            budget=budget or RunBudget(),
        )
        return asyncio.run(SynthesisRunner(settings, clients=clients).run(out, problems))

    assert beam(tmp_path / "whole").solved == 1
    cut = beam(tmp_path / "cut", RunBudget(tokens=100))  # one round of three children
    assert cut.stopped is not None and cut.finished == 0
    [types] = open_logs(tmp_path / "cut").values()
    assert types[-1] == "action_applied" and "session_ended" not in types
    resumed = beam(tmp_path / "cut")
    assert (resumed.resumed, resumed.solved) == (1, 1)
    assert logs(tmp_path / "cut") == logs(tmp_path / "whole")
