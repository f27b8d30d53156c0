"""Failed sessions are not final, a dead endpoint stops a run, unused roles are never built.

`down_policy` is `fake_policy` (test_runner) whose backend raises for the problems
numbered in `DOWN`, as a server that is down, a wrong URL or a spent quota would: those
sessions end as `model_error`. Emptying `DOWN` brings the endpoint back.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage
from rich.console import Console
from test_runner import CRITIC_SPEC, _asked, dataset, fake_critic, fake_policy, options
from typer.testing import CliRunner

from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError
from journey.evaluation import EvalOptions, EvalRunner
from journey.problems import ProblemRecord
from journey.protocols import Outcome, SessionEnded, StopReason
from journey.runs import (
    RunDirectory,
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
    merge_runs,
    read_event_log,
)
from journey.runs.stats import read_run, run_stats
from journey.runs.synthesis import EndpointDownError
from journey.view.progress import synthesis_progress
from journey.view.reports import render_synthesis_report

DOWN_SPEC = "function:test_run_errors:down_policy"
DOWN: set[int] = set()
"""Problem numbers whose policy requests fail."""


def down_policy(messages: Sequence[LLMMessage]) -> str:
    number = _asked(messages)[0]
    if number in DOWN:
        raise ConnectionError(f"endpoint down (problem {number})")
    return fake_policy(messages)


@pytest.fixture(autouse=True)
def _endpoint_up() -> Iterator[None]:
    DOWN.clear()
    yield
    DOWN.clear()


def synthesise(out: Path, problems: Sequence[ProblemRecord], **runner: Any) -> SynthesisReport:
    settings = {"policy": DOWN_SPEC, **runner.pop("options", {})}
    synth = SynthesisRunner(options(**settings), **runner)
    return asyncio.run(synth.run(out, problems))


def index_ids(run: Path) -> list[str]:
    """The session id of every line of `sessions.jsonl`, as the file holds them."""
    lines = (run / "sessions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["session_id"] for line in lines]


def last_event(run: Path, session_id: str, name: str = "events.jsonl") -> Any:
    return read_event_log(run / "sessions" / session_id / name).events[-1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- finding 5: model_error sessions run again --------------------------------------------------


def test_errored_sessions_run_again_and_supersede_their_index_line(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "plain", "reflect", "plain"])
    run = tmp_path / "run"
    DOWN.update({2, 4})
    first = synthesise(run, problems)
    assert (first.ran, first.solved, first.errors) == (4, 2, 2)
    assert first.yield_rate == 1.0  # both sessions that finished without an error solved it
    stats = run_stats(read_run(run))
    assert (stats.finished, stats.errors, stats.yield_rate) == (4, 2, 1.0)
    down = [problems[1].session_id, problems[3].session_id]

    DOWN.clear()
    second = synthesise(run, problems)
    assert (second.skipped, second.retried, second.ran) == (2, 2, 2)
    assert (second.solved, second.errors, second.yield_rate) == (4, 0, 1.0)
    assert "2 errors run again" in _render(second)
    # One line per session in the file itself: the retried ones' lines were superseded.
    assert Counter(index_ids(run)) == Counter(p.session_id for p in problems)
    assert {s.outcome for s in RunDirectory(run).summaries()} == {"solved"}
    assert run_stats(read_run(run)).outcomes == {"solved": 4}
    for session_id in down:  # the failed try is kept beside the new log
        kept = last_event(run, session_id, "events.error-1.jsonl")
        assert isinstance(kept, SessionEnded) and kept.stop_reason is StopReason.MODEL_ERROR
        assert (
            kept.error
            == f"ConnectionError: endpoint down (problem {down.index(session_id) * 2 + 2})"
        )
        assert last_event(run, session_id).outcome is Outcome.SOLVED

    third = synthesise(run, problems)  # nothing left to do
    assert (third.skipped, third.retried, third.ran) == (4, 0, 0)


def test_a_session_that_fails_again_keeps_every_failed_log(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "plain"])
    run = tmp_path / "run"
    DOWN.add(2)
    synthesise(run, problems)
    again = synthesise(run, problems)
    assert (again.retried, again.errors, again.yield_rate) == (1, 1, 1.0)
    folder = run / "sessions" / problems[1].session_id
    assert sorted(p.name for p in folder.glob("events*.jsonl")) == [
        "events.error-1.jsonl",
        "events.jsonl",
    ]
    assert index_ids(run).count(problems[1].session_id) == 1


def test_no_retry_errors_keeps_them_as_they_are(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain", "plain", "plain"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", DOWN_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--no-progress", "--json"]  # fmt: skip
    DOWN.add(3)
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    DOWN.clear()
    kept = CliRunner().invoke(app, [*args, "--no-retry-errors"])
    report = json.loads(kept.output[kept.output.index("{") :])
    assert (report["skipped"], report["ran"], report["retried"], report["errors"]) == (3, 0, 0, 1)
    assert report["yield_rate"] == 1.0
    assert not list((tmp_path / "run/sessions").glob("*/events.error-*.jsonl"))
    retried = CliRunner().invoke(app, args)  # without the flag: retried
    report = json.loads(retried.output[retried.output.index("{") :])
    assert (report["ran"], report["retried"], report["errors"], report["solved"]) == (1, 1, 0, 3)


def test_an_unindexed_error_log_and_an_interrupted_retry(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "plain", "plain"])
    run = tmp_path / "run"
    DOWN.update({1, 2})
    synthesise(run, problems)
    # Problem 1: its log ended in model_error but the run was killed before indexing it.
    # Problem 2: a retry that was interrupted: its index line says error, its new log is open.
    index = run / "sessions.jsonl"
    lines = index.read_text().splitlines()
    index.write_text("".join(f"{line}\n" for line in lines if problems[0].session_id not in line))
    log = run / "sessions" / problems[1].session_id / "events.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # problem_posed alone
    DOWN.clear()
    report = synthesise(run, problems)
    assert (report.retried, report.resumed, report.reindexed, report.ran) == (1, 1, 0, 2)
    assert (run / "sessions" / problems[0].session_id / "events.error-1.jsonl").is_file()
    assert not (run / "sessions" / problems[1].session_id / "events.error-1.jsonl").exists()
    assert sorted(index_ids(run)) == sorted(p.session_id for p in problems)
    assert report.solved == 3


def test_merge_takes_a_retried_copy_over_the_error(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "plain"])
    shard, merged = tmp_path / "shard", tmp_path / "merged"
    DOWN.add(2)
    synthesise(shard, problems)
    merge_runs([shard], merged)
    DOWN.clear()
    synthesise(shard, problems)
    report = merge_runs([shard], merged)
    assert (report.replaced, report.already_present) == (1, 1)
    assert run_stats(read_run(merged)).outcomes == {"solved": 2}
    assert Counter(index_ids(merged)) == Counter(p.session_id for p in problems)


# -- finding 5: yield without errors, shown beside them ------------------------------------------


def _render(report: SynthesisReport) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(render_synthesis_report(report))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_yield_leaves_errors_out_and_shows_them_beside_it(tmp_path: Path) -> None:
    report = SynthesisReport(
        run_dir="runs/x", strategy="debate", sessions=8, ran=8, solved=3, failed=3, errors=2
    )
    assert report.yield_rate == 0.5
    assert "50.0% (3/6) · 2 errors" in _render(report)
    problems = dataset(tmp_path / "d.jsonl", ["plain", "plain", "stuck"])
    DOWN.add(1)
    console = Console(file=io.StringIO(), force_terminal=True, width=140)
    runner = SynthesisRunner(
        options(policy=DOWN_SPEC, max_turns=3), progress=synthesis_progress(console)
    )
    asyncio.run(runner.run(tmp_path / "run", problems))
    assert "yield 1/2 · 1 error" in console.file.getvalue()  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["stats", str(tmp_path / "run"), "--json"])
    stats = json.loads(result.output)
    assert (stats["finished"], stats["errors"], stats["yield_rate"]) == (3, 1, 0.5)


# -- finding 5: a dead endpoint stops the run ---------------------------------------------------


def test_a_dead_endpoint_stops_the_run_in_one_line_and_it_resumes(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 6)
    port = closed_port()
    dead = f"openai:m@http://127.0.0.1:{port}/v1?max_retries=0&timeout=1"
    settings = options(policy=dead, concurrency=1)
    runner = SynthesisRunner(settings, max_consecutive_errors=3)
    with pytest.raises(EndpointDownError) as stopped:
        asyncio.run(runner.run(tmp_path / "run", problems))
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith(
        "stopped after 3 sessions in a row ended in model_error: "
        f"the policy endpoint {settings.models['policy']} failed with ModelUnavailableError: "
        f"model 'm' at http://127.0.0.1:{port}/v1 unavailable"
    ), message
    assert message.endswith(f"run the same command again to resume {tmp_path / 'run'}")
    report = stopped.value.report
    assert report is not None and (report.ran, report.errors) == (3, 3)
    assert len(index_ids(tmp_path / "run")) == 3  # the other three never started

    # The endpoint is back (same specs, so the run resumes): errors retried, the rest run.
    clients = {
        "policy": FunctionChatCompletionClient(fake_policy),
        "critic": FunctionChatCompletionClient(fake_critic),
    }
    again = SynthesisRunner(settings, clients=clients)
    report = asyncio.run(again.run(tmp_path / "run", problems))
    assert (report.retried, report.ran, report.solved, report.errors) == (3, 6, 6, 0)
    assert sorted(index_ids(tmp_path / "run")) == sorted(p.session_id for p in problems)


def test_a_stop_cancels_sessions_in_flight_and_leaves_their_logs_open(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 4)
    hanging = asyncio.Event()  # never set: problem 1 waits until it is cancelled

    async def policy(messages: Sequence[LLMMessage]) -> str:
        if _asked(messages)[0] == 1:
            await hanging.wait()
        return down_policy(messages)

    clients = {
        "policy": FunctionChatCompletionClient(policy),
        "critic": FunctionChatCompletionClient(fake_critic),
    }
    DOWN.update({2, 3, 4})
    runner = SynthesisRunner(
        options(policy=DOWN_SPEC, concurrency=4),
        clients=clients,
        max_consecutive_errors=3,
    )
    with pytest.raises(EndpointDownError, match="the policy endpoint function:test_run_errors"):
        asyncio.run(runner.run(tmp_path / "run", problems))
    hung = read_event_log(tmp_path / "run/sessions" / problems[0].session_id / "events.jsonl")
    assert [e.type for e in hung.events] == ["problem_posed"]  # open, not ended as cancelled
    DOWN.clear()
    report = synthesise(tmp_path / "run", problems)
    assert (report.retried, report.resumed, report.solved) == (3, 1, 4)


def test_errors_between_successes_never_stop_a_run(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 6)
    DOWN.update({1, 2, 4, 5})
    report = synthesise(
        tmp_path / "run", problems, options={"concurrency": 1}, max_consecutive_errors=3
    )
    assert (report.ran, report.errors, report.solved) == (6, 4, 2)
    with pytest.raises(ConfigError, match="got -1"):
        SynthesisRunner(options(), max_consecutive_errors=-1)


def test_the_synth_command_stops_with_one_line_and_exit_status_1(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain"] * 4)
    dead = f"openai:m@http://127.0.0.1:{closed_port()}/v1?max_retries=0&timeout=1"
    done = subprocess.run(
        [sys.executable, "-m", "journey", "synth", "--dataset", str(tmp_path / "d.jsonl"),
         "--out", str(tmp_path / "run"), "--policy", dead, "--critic", CRITIC_SPEC,
         "--critic-mode", "generate", "--concurrency", "1", "--max-consecutive-errors", "2",
         "--no-progress"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "stopped after 2 sessions in a row ended in model_error: the policy endpoint" in lines[0]
    assert done.stdout == ""


def test_eval_stops_on_a_dead_endpoint_and_resumes(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 5)

    def dead(messages: Sequence[LLMMessage]) -> str:
        raise ConnectionError("connection refused")

    eval_options = EvalOptions(model="function:test_run_errors:down_policy", batch_size=1)
    runner = EvalRunner(
        eval_options,
        client=FunctionChatCompletionClient(dead),
        max_consecutive_errors=2,
    )
    with pytest.raises(EndpointDownError) as stopped:
        asyncio.run(runner.run(tmp_path / "eval", problems, dataset="d.jsonl"))
    assert str(stopped.value).startswith(
        "stopped after 2 problems in a row failed: the model function:test_run_errors:down_policy "
        "failed with ConnectionError: connection refused"
    )
    records = tmp_path / "eval" / "records.jsonl"
    assert not records.exists() or records.read_text() == ""  # errors are never recorded

    def answer(messages: Sequence[LLMMessage]) -> str:
        return "\\boxed{2}"

    again = EvalRunner(eval_options, client=FunctionChatCompletionClient(answer))
    metrics = asyncio.run(again.run(tmp_path / "eval", problems, dataset="d.jsonl"))
    assert len(records.read_text().splitlines()) == 5 and metrics.errors == 0


# -- finding 8: a strategy builds only the roles it asks ----------------------------------------


def test_propose_critique_never_builds_the_critic(tmp_path: Path) -> None:
    for critic in ("function:nonexistent.module:f", "vllm:some/model"):
        settings = SynthesisOptions(strategy="propose-critique", policy=DOWN_SPEC, critic=critic)
        assert settings.models == {"policy": DOWN_SPEC}
    dataset(tmp_path / "d.jsonl", ["plain", "reflect"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--strategy", "propose-critique", "--no-progress", "--json",
            "--policy", "function:test_propose_critique:fake_self_policy"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--critic", "function:nonexistent.module:f"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert (report["ran"], report["solved"]) == (2, 2)
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert meta["models"] == {"policy": "function:test_propose_critique:fake_self_policy"}
    # Resuming with another critic and critic mode (unused both) is the same run.
    again = CliRunner().invoke(
        app, [*args, "--critic", "vllm:other/model", "--critic-mode", "score"]
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.output[again.output.index("{") :])["skipped"] == 2
