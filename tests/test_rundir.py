from __future__ import annotations

import json
from pathlib import Path

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.protocols import SessionEnded
from journey.runs import RunDirectory, read_event_log
from journey.sessions import DebateSession, ReasoningTree, SessionResult

OK = "VERDICT: correct\nACTION: continue\nREASON: fine"


async def finished_run(root: Path) -> tuple[RunDirectory, SessionResult]:
    run = RunDirectory(root, meta={"command": "test"})
    debate = DebateSession(
        "3 pens, 4 sheep each. How many sheep?",
        gold_answer="12",
        policy=PolicyAgent(
            ScriptedChatCompletionClient(["Step 1: 3 pens of 4.", "Step 2: \\boxed{12}"])
        ),
        critic=CriticAgent(ScriptedChatCompletionClient([OK]), mode="generate"),
    )
    with run.event_log(debate.session_id) as log:
        result = await debate.run(log.write)
    run.save(result)
    return run, result


async def test_a_saved_session_reads_back_identically(tmp_path: Path) -> None:
    run, result = await finished_run(tmp_path / "run")
    folder = run.session_dir(result.session_id)
    assert {p.name for p in folder.iterdir()} == {
        "events.jsonl",
        "tree.json",
        "transcript.md",
        "shortcut.md",
    }
    log = run.load_events(result.session_id)
    assert log.events == result.events and log.finished and not log.truncated
    assert run.load_tree(result.session_id).to_json() == result.tree.to_json()
    assert "\\boxed{12}" in (folder / "transcript.md").read_text()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["command"] == "test" and "created" in meta
    [summary] = run.summaries()
    assert summary.outcome == "solved" and summary.turns == 2 and summary.nodes == 2
    assert summary.session_id == result.session_id


async def test_a_log_cut_mid_line_replays_up_to_the_last_complete_event(tmp_path: Path) -> None:
    run, result = await finished_run(tmp_path / "run")
    path = run.session_dir(result.session_id) / "events.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # a crash while writing the last event
    log = read_event_log(path)
    assert log.truncated and not log.finished and log.bad_lines == []
    assert log.events == result.events[:-1]


async def test_damaged_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    run, result = await finished_run(tmp_path / "run")
    path = run.session_dir(result.session_id) / "events.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[1] = b'{"type": "policy_step", "garbage": \xff}'
    path.write_bytes(b"\n".join(lines))
    log = read_event_log(path)
    assert log.bad_lines == [2] and not log.truncated
    assert len(log.events) == len(result.events) - 1 and isinstance(log.events[-1], SessionEnded)


async def test_reopening_a_run_keeps_its_metadata_and_index(tmp_path: Path) -> None:
    await finished_run(tmp_path / "run")
    again = RunDirectory(tmp_path / "run", meta={"command": "other"})
    assert json.loads(again.meta_path.read_text())["command"] == "test"
    assert len(again.summaries()) == 1
    (tmp_path / "run" / "sessions.jsonl").open("a").write('{"session_id": "cut')
    assert len(again.summaries()) == 1  # a half-written index line is ignored
    assert isinstance(ReasoningTree, type)
