"""Resuming: restoring a session from its log, finished sessions left alone, and kill -9.

Every comparison is with an uninterrupted run of the same deterministic fake models
(`test_runner.fake_policy` / `fake_critic`), event by event, ignoring only what the
clock decides (`time`, `latency`, `elapsed`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage
from test_runner import (
    KINDS,
    comparable,
    dataset,
    fake_critic,
    fake_policy,
    logs,
    problem_text,
    synthesise,
)

from journey.agents import CriticAgent, PolicyAgent, step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient
from journey.problems import ProblemRecord
from journey.protocols import (
    PolicyStepProposed,
    ProblemPosed,
    SessionEnded,
    SessionEvent,
    StopReason,
    event_to_json,
)
from journey.runs import RunDirectory, read_event_log
from journey.sessions import DebateSession, RestoreError, SessionLimits

TESTS = Path(__file__).parent


def agents(critic: Any = fake_critic) -> dict[str, Any]:
    return {
        "policy": PolicyAgent(FunctionChatCompletionClient(fake_policy)),
        "critic": CriticAgent(FunctionChatCompletionClient(critic), mode="generate"),
    }


def give_up_critic(messages: Sequence[LLMMessage]) -> str:
    """Gives up (terminates) where `fake_critic` would ask for a rewrite."""
    newest = step_under_judgement(messages)
    if "oops" in newest:
        return "VERDICT: incorrect\nACTION: terminate\nREASON: This is hopeless."
    return fake_critic(messages)


def full_session(
    kind: str, gold: str | None = "2", critic: Any = fake_critic
) -> list[SessionEvent]:
    session = DebateSession(
        problem_text(1, kind),
        gold_answer=gold,
        limits=SessionLimits(max_turns=6),
        models={"policy": "p", "critic": "c"},
        **agents(critic),
    )
    return asyncio.run(session.run()).events


def tree_record(tree_json: str) -> dict[str, Any]:
    record = json.loads(tree_json)
    for node in record["nodes"]:
        node.pop("elapsed")
    return record


CASES = [pytest.param(kind, "2", fake_critic, id=kind) for kind in KINDS] + [
    pytest.param("reflect", None, fake_critic, id="no-gold-accepted"),
    pytest.param("reflect", None, give_up_critic, id="no-gold-terminated"),
]


@pytest.mark.parametrize(("kind", "gold", "critic"), CASES)
def test_restoring_any_prefix_continues_into_the_same_session(
    kind: str, gold: str | None, critic: Any
) -> None:
    reference = full_session(kind, gold, critic)
    expected = [comparable(e) for e in reference]
    stop = reference[-1]
    assert isinstance(stop, SessionEnded)
    tree = DebateSession.restore(reference, **agents(critic)).tree.to_json()
    for cut in range(1, len(reference)):
        session = DebateSession.restore(reference[:cut], **agents(critic))
        assert session.limits.max_turns == 6  # the logged limits, by default
        emitted: list[SessionEvent] = []
        result = asyncio.run(session.run(emitted.append))
        assert [comparable(e) for e in result.events] == expected, f"cut after {cut} events"
        assert emitted == result.events[cut:]  # nothing logged twice, problem_posed included
        assert tree_record(result.tree.to_json()) == tree_record(tree)
        assert all(e.time >= reference[cut - 1].time for e in emitted)  # the clock goes on


def test_the_no_gold_cases_end_as_expected() -> None:
    accepted = full_session("reflect", None)[-1]
    assert accepted.stop_reason is StopReason.ANSWER_ACCEPTED  # type: ignore[union-attr]
    assert accepted.reflections == 1  # type: ignore[union-attr]
    ended = full_session("reflect", None, give_up_critic)[-1]
    assert ended.stop_reason is StopReason.CRITIC_TERMINATED  # type: ignore[union-attr]


def test_a_finished_log_restores_a_finished_session() -> None:
    events = full_session("backtrack")
    session = DebateSession.restore(events, **agents())
    assert session.finished and session.events == events
    assert session.tree.to_json() == DebateSession.restore(events, **agents()).tree.to_json()
    with pytest.raises(RuntimeError, match="already ended"):
        asyncio.run(session.run())


def test_logs_that_are_not_a_session_prefix_are_refused() -> None:
    events = full_session("reflect")
    posed, step = events[0], events[1]
    assert isinstance(posed, ProblemPosed) and isinstance(step, PolicyStepProposed)
    bad: dict[str, tuple[list[SessionEvent], str]] = {
        "empty": ([], "must start with problem_posed"),
        "no problem": (events[1:], "must start with problem_posed"),
        "twice posed": ([posed, posed], "problem_posed appears twice"),
        "other session": (
            [posed, step.model_copy(update={"session_id": "other"})],
            "belongs to session 'other'",
        ),
        "verdict first": (
            [posed, events[2]],
            "critic_verdict on node 1, but the log was busy with nothing",
        ),
        "wrong parent": ([posed, step.model_copy(update={"parent_id": 5})], "hangs from node 5"),
        "after the end": ([*events, events[1]], "comes after session_ended"),
    }
    for name, (prefix, message) in bad.items():
        with pytest.raises(RestoreError, match=message):
            DebateSession.restore(prefix, **agents())
        assert name


# -- the runner on an existing run directory ---------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_finished_sessions_are_never_redone_or_duplicated(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", KINDS)
    synthesise(tmp_path / "run", problems[:4])
    sessions, index = tmp_path / "run/sessions", tmp_path / "run/sessions.jsonl"
    before, index_before = snapshot(sessions), index.read_bytes()
    time.sleep(0.01)  # so that a rewrite would show in the mtimes
    again = synthesise(tmp_path / "run", problems[:4])
    assert (again.skipped, again.ran, again.solved, again.generated_tokens) == (4, 0, 4, 0)
    assert snapshot(sessions) == before and index.read_bytes() == index_before
    more = synthesise(tmp_path / "run", problems)  # the dataset grew
    assert (more.skipped, more.ran, more.finished) == (4, 2, 6)
    after = snapshot(sessions)
    assert {k: after[k] for k in before} == before
    assert index.read_bytes().startswith(index_before)
    ids = [s.session_id for s in RunDirectory(tmp_path / "run").summaries()]
    assert sorted(ids) == sorted(p.session_id for p in problems)


def _reference(tmp_path: Path, kinds: Sequence[str]) -> tuple[list[ProblemRecord], Path]:
    problems = dataset(tmp_path / "d.jsonl", kinds)
    synthesise(tmp_path / "ref", problems)
    return problems, tmp_path / "ref"


def assert_same_run(run: Path, reference: Path) -> None:
    assert logs(run) == logs(reference)
    ids = [s.session_id for s in RunDirectory(run).summaries()]
    assert (
        sorted(ids)
        == sorted(set(ids))
        == sorted(p.name for p in (reference / "sessions").iterdir())
    )

    def summary(folder: Path) -> dict[str, dict[str, Any]]:
        return {
            s.session_id: s.model_dump(exclude={"elapsed"})
            for s in RunDirectory(folder).summaries()
        }

    assert summary(run) == summary(reference)
    for folder in (reference / "sessions").iterdir():
        mine = run / "sessions" / folder.name
        assert tree_record((mine / "tree.json").read_text()) == tree_record(
            (folder / "tree.json").read_text()
        )
        assert (mine / "transcript.md").read_text() == (folder / "transcript.md").read_text()


@pytest.mark.parametrize("mid_line", [False, True], ids=["at-a-line-end", "mid-line"])
def test_unfinished_logs_continue_where_they_stopped(tmp_path: Path, mid_line: bool) -> None:
    problems, reference = _reference(tmp_path, KINDS)
    lines = {
        p.session_id: (reference / "sessions" / p.session_id / "events.jsonl")
        .read_bytes()
        .splitlines(keepends=True)
        for p in problems
    }
    longest = max(len(v) for v in lines.values())
    for cut in range(0 if mid_line else 1, longest):
        run = tmp_path / f"cut{cut}"
        for session_id, log in lines.items():
            keep = min(cut, len(log) - 1)  # never the session_ended line
            data = b"".join(log[:keep])
            if mid_line:
                data += log[keep][: len(log[keep]) // 2]
            folder = run / "sessions" / session_id
            folder.mkdir(parents=True)
            (folder / "events.jsonl").write_bytes(data)
        report = synthesise(run, problems)
        assert report.restarted == 0 and report.crashed == 0
        assert report.resumed == (len(problems) if cut else 0)
        assert_same_run(run, reference)


def test_a_complete_last_line_missing_its_newline_is_kept(tmp_path: Path) -> None:
    problems, reference = _reference(tmp_path, ["backtrack"])
    log = (reference / "sessions" / problems[0].session_id / "events.jsonl").read_bytes()
    folder = tmp_path / "run/sessions" / problems[0].session_id
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_bytes(b"".join(log.splitlines(keepends=True)[:4]).rstrip(b"\n"))
    assert synthesise(tmp_path / "run", problems).resumed == 1
    assert_same_run(tmp_path / "run", reference)


def test_killed_while_saving_the_session_is_indexed_once(tmp_path: Path) -> None:
    problems, reference = _reference(tmp_path, ["plain", "reflect", "stuck"])
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    index = run / "sessions.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    # The last session was saved but its index line was cut mid-write; the one before
    # ended in its log and was never saved at all.
    (run / "sessions" / json.loads(lines[1])["session_id"] / "tree.json").unlink()
    index.write_bytes(lines[0] + lines[2][:30])
    report = synthesise(run, problems)
    assert (report.skipped, report.reindexed, report.ran, report.finished) == (1, 2, 0, 3)
    assert_same_run(run, reference)


def test_a_damaged_log_is_set_aside_and_the_session_starts_again(tmp_path: Path) -> None:
    problems, reference = _reference(tmp_path, ["reflect", "plain"])
    run = tmp_path / "run"
    log = (reference / "sessions" / problems[0].session_id / "events.jsonl").read_bytes()
    lines = log.splitlines(keepends=True)
    folder = run / "sessions" / problems[0].session_id
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_bytes(lines[0] + b"{garbage}\n" + lines[1])
    report = synthesise(run, problems)
    assert report.restarted == 1 and report.problems[0].startswith(problems[0].session_id)
    assert (folder / "events.broken.jsonl").exists()
    assert_same_run(run, reference)


def test_a_log_that_does_not_replay_is_set_aside_too(tmp_path: Path) -> None:
    problems, reference = _reference(tmp_path, ["plain"])
    log = read_event_log(reference / "sessions" / problems[0].session_id / "events.jsonl").events
    folder = tmp_path / "run/sessions" / problems[0].session_id
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text(
        event_to_json(log[0]) + "\n" + event_to_json(log[2]) + "\n"
    )
    report = synthesise(tmp_path / "run", problems)
    assert (report.restarted, report.resumed) == (
        1,
        0,
    ) and "cannot continue its log" in report.problems[0]
    assert_same_run(tmp_path / "run", reference)


# -- kill -9 ------------------------------------------------------------------------------


def _events_written(run: Path) -> int:
    """Event lines in the run so far, read while the run writes: a log the resumed run
    sets aside (`events.broken.jsonl`, `events.error-N.jsonl`) can move between the
    listing and the read."""
    lines = 0
    for log in run.glob("sessions/*/events.jsonl"):
        try:
            lines += len(log.read_bytes().splitlines())
        except FileNotFoundError:
            continue
    return lines


def test_kill_9_at_random_moments_then_resume(tmp_path: Path) -> None:
    """Kill `journey synth` three times mid-run, resume, and get the uninterrupted run."""
    kinds = [KINDS[i % len(KINDS)] for i in range(20)]
    problems = dataset(tmp_path / "d.jsonl", kinds)
    specs = {
        "policy": "function:test_runner:slow_policy",
        "critic": "function:test_runner:slow_critic",
    }
    synthesise(
        tmp_path / "ref", problems, policy=specs["policy"], critic=specs["critic"], concurrency=4
    )
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "journey", "synth", "--dataset", str(tmp_path / "d.jsonl"),
        "--out", str(run), "--policy", specs["policy"], "--critic", specs["critic"],
        "--critic-mode", "generate", "--max-turns", "6", "--concurrency", "4", "--no-progress",
    ]  # fmt: skip
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), path]))}
    rng = random.Random(20261124)
    killed = []
    for _ in range(3):
        written = _events_written(run)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while _events_written(run) <= written and process.poll() is None:
            assert time.monotonic() < deadline, "journey synth wrote nothing"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode in (-signal.SIGKILL, 0), stderr
        killed.append(process.returncode == -signal.SIGKILL)
    assert killed[0], "the first run ended before it could be killed"
    final = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["finished"] == 20 and report["crashed"] == 0 and report["restarted"] == 0
    assert_same_run(run, tmp_path / "ref")


def test_a_log_about_another_answer_is_set_aside(tmp_path: Path) -> None:
    problems, reference = _reference(tmp_path, ["reflect"])
    log = (reference / "sessions" / problems[0].session_id / "events.jsonl").read_bytes()
    folder = tmp_path / "run/sessions" / problems[0].session_id
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_bytes(b"".join(log.splitlines(keepends=True)[:3]))
    changed = [replace(problems[0], answer="3")]  # the dataset's gold answer was corrected
    report = synthesise(tmp_path / "run", changed)
    assert (report.restarted, report.resumed, report.failed) == (1, 0, 1)
    assert "another problem or answer" in report.problems[0]
    posed = read_event_log(folder / "events.jsonl").events[0]
    assert isinstance(posed, ProblemPosed) and posed.gold_answer == "3"
