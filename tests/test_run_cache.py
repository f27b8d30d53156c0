"""A run's response cache: a second run on a warm cache asks no model and writes the
same sessions; the counts reach the report, `cache.json` and `journey stats`."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import LLMMessage
from rich.console import Console
from test_runner import _asked, comparable, dataset, fake_critic, options
from typer.testing import CliRunner

from journey.agents.backends.cached_client import CacheMode
from journey.cli import app
from journey.runs import RunDirectory, SynthesisReport, SynthesisRunner
from journey.runs.response_cache import CACHE_STATS_FILE, CacheSettings, recorded_cache_stats
from journey.runs.rundir import read_event_log
from journey.view.progress import synthesis_progress

CALLS: Counter[str] = Counter()


def random_policy(messages: Sequence[LLMMessage]) -> str:
    """A sampling policy: its first step differs on every call, so only a cache can
    make two runs write the same sessions."""
    CALLS["policy"] += 1
    k, _, n, _ = _asked(messages)
    if n == 1:
        return f"Step 1: We add {k} and {k} (draw {random.random():.9f})."
    return f"Step {n}: {k} + {k} = {2 * k}, so the answer is \\boxed{{{2 * k}}}."


def counted_critic(messages: Sequence[LLMMessage]) -> str:
    CALLS["critic"] += 1
    return fake_critic(messages)


def synthesise(out: Path, cache: CacheSettings, **kw: Any) -> SynthesisReport:
    problems = dataset(out.parent / "d.jsonl", ("plain", "plain", "plain"))
    settings = options(
        policy="function:test_run_cache:random_policy",
        critic="function:test_run_cache:counted_critic",
        cache=cache,
        **kw,
    )
    runner = SynthesisRunner(settings, progress=synthesis_progress(Console(file=io.StringIO())))
    return asyncio.run(runner.run(out, problems))


def sessions(run: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for folder in sorted((run / "sessions").iterdir()):
        out[folder.name] = [comparable(e) for e in read_event_log(folder / "events.jsonl").events]
    return out


def test_a_run_on_a_warm_cache_asks_no_model_and_writes_the_same_sessions(
    tmp_path: Path,
) -> None:
    shared = CacheSettings(directory=tmp_path / "cache")
    CALLS.clear()
    cold = synthesise(tmp_path / "first", shared)
    asked = dict(CALLS)
    assert asked["policy"] == 6 and asked["critic"] == 3  # two steps, one verdict each
    assert cold.cache["policy"]["misses"] == 6 and cold.cache["policy"]["stored"] == 6

    CALLS.clear()
    warm = synthesise(tmp_path / "second", shared)
    assert Counter() == CALLS  # no model asked
    assert sessions(tmp_path / "second") == sessions(tmp_path / "first")
    assert warm.cache["policy"]["hits"] == 6 and warm.cache["critic"]["hits"] == 3
    assert warm.cache["policy"]["misses"] == 0
    assert warm.cache["policy"]["completion_tokens_saved"] == sum(
        s.usage["policy"].completion_tokens for s in RunDirectory(tmp_path / "first").summaries()
    )
    assert warm.solved == cold.solved == 3

    # Without the cache the same run draws new steps.
    CALLS.clear()
    synthesise(tmp_path / "third", CacheSettings(mode=CacheMode.OFF))
    assert CALLS["policy"] == 6
    assert sessions(tmp_path / "third") != sessions(tmp_path / "first")


def test_the_default_cache_lives_in_the_run_and_its_counts_add_up(tmp_path: Path) -> None:
    run = tmp_path / "run"
    synthesise(run, CacheSettings())
    assert list((run / "cache").glob("*.sqlite")), "the cache is in the run directory"
    assert json.loads((run / "run.json").read_text())["cache"] == {
        "mode": "readwrite",
        "directory": "cache/ in the run",
    }
    totals = recorded_cache_stats(run)
    assert totals["policy"].misses == 6 and totals["policy"].hits == 0

    # The same run again: all finished, nothing asked, counts unchanged but kept.
    synthesise(run, CacheSettings())
    assert recorded_cache_stats(run)["policy"].misses == 6

    stats = CliRunner().invoke(app, ["stats", str(run), "--json"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["cache"]["policy"]["stored"] == 6


def test_cache_off_writes_no_cache_and_a_damaged_count_file_starts_again(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    report = synthesise(run, CacheSettings(mode=CacheMode.OFF))
    assert report.cache == {} and not (run / "cache").exists()
    assert not (run / CACHE_STATS_FILE).exists()
    (run / CACHE_STATS_FILE).write_text("{not json")
    assert recorded_cache_stats(run) == {}


def test_the_cli_takes_a_shared_cache_and_stats_shows_it(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ("plain", "plain"))
    args = [
        "synth",
        "--dataset",
        str(tmp_path / "d.jsonl"),
        "--policy",
        "function:test_run_cache:random_policy",
        "--critic",
        "function:test_run_cache:counted_critic",
        "--critic-mode",
        "generate",
        "--cache",
        str(tmp_path / "shared"),
        "--no-progress",
        "--json",
    ]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    CALLS.clear()
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert not CALLS and json.loads(second.stdout)["cache"]["policy"]["hits"] == 4
    assert sessions(tmp_path / "b") == sessions(tmp_path / "a")
    table = runner.invoke(app, ["stats", str(tmp_path / "b")])
    assert "cache · policy hits" in table.stdout and "cache · critic misses" in table.stdout
    wrong = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--cache-mode", "maybe"])
    assert wrong.exit_code != 0
    assert "cache mode must be one of off, read, write, readwrite" in str(wrong.exception)
