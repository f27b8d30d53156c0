"""A role on several endpoints in a real run: one dies mid-run, the run loses nothing."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from rich.console import Console
from test_runner import dataset, fake_policy, options
from typer.testing import CliRunner

from journey.agents.backends.cached_client import CacheMode
from journey.agents.backends.role_endpoints import role_spec_text, role_specs
from journey.cli import app
from journey.errors import ModelSpecError
from journey.runs import RunDirectory, SynthesisRunner
from journey.runs.response_cache import CacheSettings
from journey.view.progress import synthesis_progress

SERVED: Counter[str] = Counter()
DIES_AFTER = 3


async def steady_policy(messages: Sequence[LLMMessage]) -> str:
    await asyncio.sleep(0.005)
    SERVED["steady"] += 1
    return fake_policy(messages)


async def dying_policy(messages: Sequence[LLMMessage]) -> str:
    await asyncio.sleep(0.005)
    if SERVED["dying"] >= DIES_AFTER:
        raise ConnectionError("the server went away")
    SERVED["dying"] += 1
    return fake_policy(messages)


STEADY = "function:test_run_endpoints:steady_policy"
DYING = "function:test_run_endpoints:dying_policy"


def test_a_dying_endpoint_costs_the_run_nothing(tmp_path: Path) -> None:
    SERVED.clear()
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect", "backtrack", "plain"] * 2)
    settings = options(
        policy=f"{DYING}?concurrency=2,{STEADY}?concurrency=2",
        cache=CacheSettings(mode=CacheMode.OFF),
    )
    runner = SynthesisRunner(settings, progress=synthesis_progress(Console(file=io.StringIO())))
    report = asyncio.run(runner.run(tmp_path / "run", problems))
    assert report.errors == 0 and report.solved == len(problems) == report.ran
    assert SERVED["dying"] == DIES_AFTER and SERVED["steady"] > 0
    dying, steady = report.endpoints["policy"]
    assert dying["name"].startswith(DYING) and not dying["healthy"] and dying["failures"] >= 1
    assert steady["healthy"] and steady["failures"] == 0
    assert "the server went away" in dying["last_error"]
    summaries = RunDirectory(tmp_path / "run").summaries()
    assert sorted(s.session_id for s in summaries) == sorted(p.session_id for p in problems)


def test_role_specs_from_a_list_or_a_file(tmp_path: Path) -> None:
    listed = tmp_path / "endpoints.txt"
    listed.write_text(f"# the two servers\n{STEADY}?concurrency=4\n\n{DYING}\n")
    assert [str(s) for s in role_specs(f"@{listed}")] == [f"{STEADY}?concurrency=4", DYING]
    assert role_spec_text(f"@{listed}") == role_spec_text(f"{STEADY}?concurrency=4, {DYING}")
    with pytest.raises(ModelSpecError, match="named twice"):
        role_specs(f"{STEADY},{STEADY}")
    with pytest.raises(ModelSpecError, match="cannot read the endpoint list"):
        role_specs(f"@{tmp_path / 'missing.txt'}")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ModelSpecError, match="names no model spec"):
        role_specs(f"@{tmp_path / 'empty.txt'}")


def test_the_cli_takes_several_endpoints_and_records_them(tmp_path: Path) -> None:
    SERVED.clear()
    dataset(tmp_path / "d.jsonl", ["plain", "plain"])
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "--dataset",
            str(tmp_path / "d.jsonl"),
            "--out",
            str(tmp_path / "run"),
            "--policy",
            f"{STEADY},{DYING}",
            "--critic",
            "function:test_runner:fake_critic",
            "--critic-mode",
            "generate",
            "--no-progress",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    run_json = (tmp_path / "run" / "run.json").read_text()
    assert f"{STEADY},{DYING}" in run_json


def test_a_comma_inside_an_option_value_is_no_new_endpoint() -> None:
    from journey.agents.backends.role_endpoints import role_specs

    specs = role_specs("vllm:M?data_parallel=2&gpus=0,1,openai:m@http://h:8000/v1")
    assert [s.backend for s in specs] == ["vllm", "openai"]
    assert specs[0].options["gpus"] == "0,1"
    assert len(role_specs("embedded?seed=1,embedded")) == 2  # a backend name starts a spec
