"""Faults: a flaky server under a few hundred sessions, and bad inputs that damage nothing.

The flaky-server run goes through the real OpenAI backend (HTTP on loopback, retries,
timeouts) with about a thousand injected faults; every session must end exactly once,
either finished or as `model_error` with its reason, and every transport fault must be
accounted for as a retry or as the error that ended a session.

Bad inputs not covered by test_dataset.py: huge lines, a gold answer the grader cannot
parse, and a bad dataset given to an existing run directory.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from _flaky_server import FlakyServer
from autogen_core.models import LLMMessage
from rich.console import Console

from journey.agents.backends import FunctionChatCompletionClient
from journey.agents.backends.openai_compat import OpenAICompatibleClient
from journey.errors import DatasetError
from journey.problems import load_problems
from journey.protocols import SessionEnded
from journey.runs import (
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
    read_event_log,
)
from journey.sessions import SessionLimits
from journey.view.reports import render_synthesis_report

SESSIONS = 250
FAULT_RATE = 0.6
RETRIES = 5
TRANSPORT_FAULTS = ("timeout", "reset", "429", "500", "503", "truncated")


def write_sums(path: Path, count: int) -> Path:
    lines = [
        json.dumps({"problem": f"What is {k} + {k + 1}?", "answer": str(2 * k + 1)})
        for k in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flaky_client(model: str, server: FlakyServer) -> OpenAICompatibleClient:
    return OpenAICompatibleClient(
        model,
        api_key="sk-flaky-test",
        base_url=server.base_url,
        timeout=2.0,  # the server's hang (4 s) trips it; generous for a loaded machine
        max_retries=RETRIES,
        backoff_base=0.001,  # tiny waits keep the test short
        max_backoff=0.005,
    )


def run_synth(
    out: Path, dataset: Path, clients: dict[str, object], *, concurrency: int, max_turns: int = 4
) -> SynthesisReport:
    options = SynthesisOptions(
        policy="openai:policy@http://127.0.0.1:1/v1",
        critic="openai:critic@http://127.0.0.1:1/v1",
        critic_mode="generate",
        concurrency=concurrency,
        limits=SessionLimits(max_turns=max_turns),
    )
    runner = SynthesisRunner(
        options,
        clients=clients,  # type: ignore[arg-type]
    )
    return asyncio.run(runner.run(out, load_problems(dataset).records))


def test_a_flaky_server_loses_and_duplicates_no_session(tmp_path: Path) -> None:
    dataset = write_sums(tmp_path / "sums.jsonl", SESSIONS)
    server = FlakyServer(FAULT_RATE, seed=6, hang=4.0)
    server.start()
    try:
        policy, critic = flaky_client("policy", server), flaky_client("critic", server)
        report = run_synth(
            tmp_path / "run", dataset, {"policy": policy, "critic": critic}, concurrency=48
        )
    finally:
        server.stop()

    lines = (tmp_path / "run" / "sessions.jsonl").read_text(encoding="utf-8").splitlines()
    summaries = [json.loads(line) for line in lines]
    ids = Counter(s["session_id"] for s in summaries)
    expected = {r.session_id for r in load_problems(dataset).records}
    lost, duplicated = expected - set(ids), [i for i, n in ids.items() if n > 1]
    outcomes = Counter(s["outcome"] for s in summaries)
    retries = policy.retry_count + critic.retry_count
    transport = sum(server.faults[f] for f in TRANSPORT_FAULTS)
    print(
        f"\n{SESSIONS} sessions, {server.requests} requests, {server.injected} faults injected "
        f"({dict(server.faults)}); outcomes {dict(outcomes)}; lost {len(lost)}, "
        f"duplicated {len(duplicated)}; retries {retries} "
        f"(policy {policy.retries_by_cause}, critic {critic.retries_by_cause})"
    )

    assert server.injected >= 800 and all(server.faults[f] > 0 for f in server.faults)
    assert not lost and not duplicated and set(ids) == expected
    assert report.finished == SESSIONS and report.crashed == 0 and report.restarted == 0
    assert outcomes["error"] == report.errors > 0  # some calls ran out of retries...
    assert outcomes["solved"] > SESSIONS // 2  # ...most sessions got through anyway
    failed_calls = 0
    for summary in summaries:
        log = read_event_log(tmp_path / "run/sessions" / summary["session_id"] / "events.jsonl")
        assert not log.bad_lines and not log.truncated
        ended = [e for e in log.events if isinstance(e, SessionEnded)]
        assert len(ended) == 1 and ended[0] is log.events[-1]
        if summary["outcome"] == "error":
            # Either the backend ran out of retries, or empty/off-protocol replies kept coming.
            error = ended[0].error or ""
            assert ended[0].stop_reason == "model_error" and "sk-flaky-test" not in error
            if f"unavailable after {RETRIES + 1} attempts" in error:
                failed_calls += 1
            else:
                assert "gave no usable" in error, error
    # Every transport fault was retried or ended a session: none went unnoticed. (More
    # retries than faults only when a good reply came too late for a loaded machine.)
    assert retries + failed_calls >= transport
    # The run's report counts the same retries, by cause, and its summary table shows them.
    assert report.retries == retries and sum(report.retries_by_cause.values()) == retries
    table = Console(file=io.StringIO(), width=200)
    table.print(render_synthesis_report(report))
    assert re.search(rf"retries +│ {retries} \(", table.file.getvalue())


# -- bad inputs ------------------------------------------------------------------------------


def test_huge_lines_are_one_short_issue_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    good = json.dumps({"problem": "What is 1 + 1?", "answer": "2"}).encode()
    big_problem = json.dumps({"problem": "y" * 2_000_000 + " 1 + 2?", "answer": "3"}).encode()
    path.write_bytes(good + b"\n" + b'{"problem": "' + b"x" * 20_000_000 + b"\n" + big_problem)
    data = load_problems(path)
    assert [r.line for r in data.records] == [1, 3]  # a big but valid problem is kept
    (issue,) = data.issues
    text = str(issue)
    assert text.startswith(f"{path}:2: not valid JSON") and "\n" not in text and len(text) < 300
    with pytest.raises(DatasetError, match=r"huge\.jsonl:2: not valid JSON") as raised:
        load_problems(path, strict=True)
    assert len(str(raised.value)) < 300


def _boxing_policy(messages: Sequence[LLMMessage]) -> str:
    return "Step 1: Adding gives \\boxed{2}."


def _agreeing_critic(messages: Sequence[LLMMessage]) -> str:
    return "VERDICT: correct\nACTION: continue\nREASON: Fine."


@pytest.mark.parametrize("gold", ["\\frac{1}{", "}{", "\\boxed{", "$$"])
def test_a_gold_answer_the_grader_cannot_parse_fails_its_session_only(
    tmp_path: Path, gold: str
) -> None:
    dataset = tmp_path / "d.jsonl"
    rows = [{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "Odd one?", "answer": gold}]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    clients = {
        "policy": FunctionChatCompletionClient(_boxing_policy),
        "critic": FunctionChatCompletionClient(_agreeing_critic),
    }
    report = run_synth(tmp_path / "run", dataset, clients, concurrency=2, max_turns=3)
    assert (report.finished, report.crashed, report.solved, report.failed) == (2, 0, 1, 1)
    summaries = [
        json.loads(line) for line in (tmp_path / "run/sessions.jsonl").read_text().splitlines()
    ]
    odd = next(s for s in summaries if s["gold_answer"] == gold)
    assert odd["outcome"] == "failed" and odd["final_answer"] is None


def _snapshot(run: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name not in ("run.json", ".synth.lock")
    }


def test_a_bad_dataset_damages_nothing_already_written(tmp_path: Path) -> None:
    dataset = write_sums(tmp_path / "good.jsonl", 3)
    clients = {
        "policy": FunctionChatCompletionClient(_boxing_policy),
        "critic": FunctionChatCompletionClient(_agreeing_critic),
    }
    run = tmp_path / "run"
    first = run_synth(run, dataset, clients, concurrency=2, max_turns=2)
    assert first.finished == 3
    before = _snapshot(run)

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(dataset.read_bytes() + b'{"problem": "cut\n\xff\xfe\n{"answer": "1"}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:4"):
        load_problems(bad, strict=True)
    again = run_synth(run, bad, clients, concurrency=2, max_turns=2)  # bad lines skipped
    assert (again.skipped, again.ran, again.finished) == (3, 0, 3)
    assert _snapshot(run) == before


def test_an_overlong_gold_answer_is_an_issue_not_a_grader_timeout(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    rows = [{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "Q?", "answer": "9" * 5000}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    data = load_problems(path)
    assert [r.line for r in data.records] == [1]
    (issue,) = data.issues
    assert str(issue).startswith(f"{path}:2: 'answer' is 5,000 characters long")


def test_the_command_line_reports_each_bad_line_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "What is 1 + 1?", "answer": "2"}\nnot json\n', encoding="utf-8")
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "journey", "eval", "--model", "function:no_such_module:x",
               "--dataset", str(path), "--out", str(out), "--no-progress"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.count(f"{path}:2: not valid JSON") == 1, done.stderr
