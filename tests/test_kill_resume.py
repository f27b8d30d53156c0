"""Kill -9 of `journey synth` talking HTTP to a model server, then resume.

test_synth_resume.py kills a run whose models are in-process functions. Here the
models are behind the OpenAI backend on a loopback server (`bench._capacity_server`,
whose replies depend only on the prompt: debates of three to five steps, a quarter
with a reflection), so the kills land while requests are in flight on the wire. The
run is killed five times at seeded random moments and resumed each time; the final
run must equal an uninterrupted one (`assert_same_run`: same events per session but
for timing, same index lines, trees and transcripts, no duplicate) and no kill may
leave a duplicate index line behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_synth_resume import assert_same_run

ROOT = Path(__file__).resolve().parent.parent
KILLS = 5
PROBLEMS = 24


@pytest.fixture
def model_server() -> Iterator[str]:
    """A capacity server fast enough for a test: 8 slots, 2,000 tokens/s each."""
    command = [
        sys.executable, "-m", "bench._capacity_server",
        "--slots", "8", "--rate", "2000", "--latency", "0.01", "--words", "24",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        process.terminate()
        process.wait(10)


def _command(dataset: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "journey", "synth", "--dataset", str(dataset), "--out", str(out),
        "--policy", f"openai:policy@{url}", "--critic", f"openai:critic@{url}",
        "--critic-mode", "generate", "--max-turns", "10", "--concurrency", "6",
        "--no-progress", "--json",
    ]  # fmt: skip


def _events_written(run: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in run.glob("sessions/*/events.jsonl"))


def _index_ids(run: Path) -> list[str]:
    index = run / "sessions.jsonl"
    if not index.exists():
        return []
    lines = index.read_bytes().splitlines(keepends=True)
    return [json.loads(line)["session_id"] for line in lines if line.endswith(b"\n")]


def test_kill_9_mid_request_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, model_server: str
) -> None:
    dataset = tmp_path / "problems.jsonl"
    rows = [
        {"problem": f"What is {k} + {2 * k + 7}?", "answer": str(3 * k + 7)}
        for k in range(PROBLEMS)
    ]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    env = {**os.environ, "OPENAI_API_KEY": "EMPTY"}

    reference = subprocess.run(
        _command(dataset, tmp_path / "ref", model_server),
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert json.loads(reference.stdout)["finished"] == PROBLEMS

    run, rng, killed = tmp_path / "run", random.Random(20261124), 0
    for _ in range(KILLS):
        written = _events_written(run)
        process = subprocess.Popen(
            _command(dataset, run, model_server),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _events_written(run) <= written and process.poll() is None:
            assert time.monotonic() < deadline, "journey synth wrote nothing"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode in (-signal.SIGKILL, 0), stderr.decode()[-2000:]
        killed += process.returncode == -signal.SIGKILL
        ids = _index_ids(run)
        assert len(ids) == len(set(ids)), "a kill left a duplicate index line"
    assert killed >= 3, f"only {killed} of {KILLS} runs were still going when killed"

    final = subprocess.run(
        _command(dataset, run, model_server),
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr[-2000:]
    report = json.loads(final.stdout)
    assert report["finished"] == PROBLEMS and report["crashed"] == 0
    assert Counter(_index_ids(run)) == Counter(_index_ids(tmp_path / "ref"))
    assert_same_run(run, tmp_path / "ref")
