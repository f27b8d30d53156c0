"""Secrets: a planted API key is sent to the server and appears nowhere else.

`journey synth` runs against the flaky loopback server (so requests fail, are retried
and some sessions end with their error recorded) with the key in `OPENAI_API_KEY` and
the openai SDK's own debug logging on; then the run is exported. The key must not be
in the run directory, the export, stdout, stderr or any captured log record.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _flaky_server import FlakyServer
from rich.console import Console

from journey.problems import load_problems
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.sessions import SessionLimits
from journey.view.progress import synthesis_progress

KEY = "sk-planted-5ecret-Zq9xW2vT7uLmN4pR8sK3"


def _dataset(path: Path, count: int) -> Path:
    lines = [
        json.dumps({"problem": f"What is {k} + {k + 1}?", "answer": str(2 * k + 1)})
        for k in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _files_holding(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer(0.5, seed=11, hang=3.0)
    server.start()
    yield server
    server.stop()


def test_the_cli_keeps_the_key_out_of_runs_exports_and_output(
    tmp_path: Path, flaky: FlakyServer
) -> None:
    dataset = _dataset(tmp_path / "d.jsonl", 16)
    spec = "openai:{}@" + flaky.base_url + "?timeout=1&max_retries=1"
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_LOG": "debug"}
    synth_command = [
        sys.executable, "-m", "journey", "synth", "--dataset", str(dataset),
        "--out", str(tmp_path / "run"), "--policy", spec.format("policy"),
        "--critic", spec.format("critic"), "--critic-mode", "generate",
        "--max-turns", "4", "--concurrency", "8", "--no-progress",
    ]  # fmt: skip
    export_command = [
        sys.executable, "-m", "journey", "export", str(tmp_path / "run"),
        "--format", "sft", "--all-outcomes", "--out", str(tmp_path / "sft.jsonl"),
    ]  # fmt: skip
    synth = subprocess.run(
        synth_command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert synth.returncode == 0, synth.stderr[-2000:]
    export = subprocess.run(
        export_command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    flaky.stop()

    assert flaky.authorization == f"Bearer {KEY}"  # the key really was in use...
    index = (tmp_path / "run/sessions.jsonl").read_text(encoding="utf-8")
    assert '"outcome": "error"' in index or '"outcome":"error"' in index  # ...and errors logged
    assert "HTTP Request" in synth.stderr or "Request options" in synth.stderr  # debug logs on
    assert KEY not in synth.stdout + synth.stderr
    assert KEY not in export.stdout + export.stderr
    assert _files_holding(tmp_path, KEY) == []  # run directory, export and its card


def test_failing_requests_log_no_key_in_process(
    tmp_path: Path,
    flaky: FlakyServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)  # every logger, the openai SDK's and httpx's included
    options = SynthesisOptions(
        policy=f"openai:policy@{flaky.base_url}?timeout=1&max_retries=0",
        critic=f"openai:critic@{flaky.base_url}?timeout=1&max_retries=0",
        critic_mode="generate",
        concurrency=8,
        limits=SessionLimits(max_turns=4),
    )
    out = io.StringIO()
    runner = SynthesisRunner(options, progress=synthesis_progress(Console(file=out)))
    dataset = _dataset(tmp_path / "d.jsonl", 12)
    report = asyncio.run(runner.run(tmp_path / "run", load_problems(dataset).records))
    assert report.errors > 0 and report.finished == 12
    formatter = logging.Formatter()  # the message with its arguments and any traceback
    logged = "\n".join(f"{formatter.format(r)} {r.args!r}" for r in caplog.records)
    assert caplog.records and KEY not in logged
    assert KEY not in repr(report) and KEY not in out.getvalue()
    assert _files_holding(tmp_path, KEY) == []
