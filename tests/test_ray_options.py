"""What each Ray worker reserves, from the command line to the actor, without a cluster:
a fake `ray` module records what `run_units` asks of `ray.remote` and stops there (the
job's spend ledger, started first, gets a fake handle: no real cluster starts, which
would outlive the test and refuse the next module's `ray.init`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage
from typer.testing import CliRunner

import journey.runs.ray_units as ray_units
from journey.cli import app
from journey.cli._app import main
from journey.cli._options import ray_options
from journey.errors import ConfigError
from journey.runs.ray_budget import SpendLedger
from journey.runs.ray_units import RayOptions

runner = CliRunner()
COMMANDS = ("synth", "eval", "pairs")


def reply(messages: Sequence[LLMMessage]) -> str:
    return "\\boxed{2}"  # never asked: no worker starts here


MODEL = f"function:{__name__}:reply"


class _WorkerStarted(Exception):
    """Where the fake cluster would start a worker actor."""


class _ActorClass:
    def remote(self, *args: Any) -> Any:
        raise _WorkerStarted


class _Call:
    def remote(self, *args: Any) -> dict[str, Any]:
        return {}  # the ledger's `unsaved`: no meter left anything unsaved


class _LedgerHandle:
    def __getattr__(self, method: str) -> _Call:
        return _Call()


class _LedgerClass:
    def remote(self) -> _LedgerHandle:
        return _LedgerHandle()


class FakeRay:
    """The `ray` that `run_units` makes its actor class with; starting a worker stops the
    job, and what the worker's class was made with is what a test looks at."""

    def __init__(self) -> None:
        self.actor_options: list[dict[str, Any]] = []

    def remote(self, **options: Any) -> Callable[[type], Any]:
        def make(cls: type) -> Any:
            if cls is SpendLedger:
                return _LedgerClass()
            self.actor_options.append(options)
            return _ActorClass()

        return make

    @staticmethod
    def get(value: Any) -> Any:
        return value

    @staticmethod
    def kill(handle: Any) -> None:
        pass


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay()
    monkeypatch.setattr(ray_units, "connect", lambda options: fake)
    return fake


def write_dataset(path: Path) -> Path:
    rows = [{"problem": f"What is {n}+{n}?", "answer": str(2 * n)} for n in range(2)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def command_args(command: str, tmp_path: Path, *extra: str) -> list[str]:
    dataset = str(write_dataset(tmp_path / "d.jsonl"))
    out = str(tmp_path / ("pairs.jsonl" if command == "pairs" else "out"))
    models = ["--policy", MODEL, "--critic", MODEL] if command == "synth" else ["--model", MODEL]
    return [command, *models, "--dataset", dataset, "--out", out, "--no-progress", *extra]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_worker_options_reach_the_actor(
    command: str, tmp_path: Path, fake_ray: FakeRay
) -> None:
    args = command_args(
        command, tmp_path, "--ray", "local", "--ray-worker-gpus", "0.5", "--ray-worker-cpus", "2"
    )
    result = runner.invoke(app, args)
    assert isinstance(result.exception, _WorkerStarted), result.output
    assert fake_ray.actor_options == [{"num_cpus": 2.0, "num_gpus": 0.5, "max_restarts": 0}]


def test_by_default_a_worker_reserves_one_cpu_and_no_gpu(tmp_path: Path, fake_ray: FakeRay) -> None:
    result = runner.invoke(app, command_args("eval", tmp_path, "--ray", "local"))
    assert isinstance(result.exception, _WorkerStarted), result.output
    assert fake_ray.actor_options == [{"num_cpus": 1.0, "num_gpus": 0.0, "max_restarts": 0}]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray-worker-gpus", "-1"], "ray worker GPUs must be 0 or more, got -1.0"),
        (["--ray-worker-cpus", "0"], "ray worker CPUs must be above 0, got 0.0"),
    ],
)
def test_a_worker_reserving_too_little_is_one_line(
    command: str,
    extra: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_ray: FakeRay,
) -> None:
    args = command_args(command, tmp_path, "--ray", "local", *extra)
    monkeypatch.setattr(sys, "argv", ["journey", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert fake_ray.actor_options == []  # refused before anything ran
    assert not (tmp_path / ("pairs.jsonl" if command == "pairs" else "out")).exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_the_help_lists_the_worker_options(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0
    for flag in ("--ray-worker-cpus", "--ray-worker-gpus"):
        assert flag in result.output


def test_without_ray_the_options_run_nothing_on_ray() -> None:
    given = {"ray_workers": 2, "ray_units": None, "ray_worker_cpus": 1.0}
    assert ray_options(ray=None, ray_worker_gpus=-1.0, **given) is None  # never read
    built = ray_options(ray="auto", ray_worker_gpus=0.25, **given)
    assert built == RayOptions(address="auto", workers=2, worker_gpus=0.25)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"worker_gpus": -0.5}, "ray worker GPUs must be 0 or more, got -0.5"),
        ({"worker_gpus": float("nan")}, "ray worker GPUs must be 0 or more, got nan"),
        ({"worker_cpus": 0.0}, "ray worker CPUs must be above 0, got 0.0"),
        ({"worker_cpus": -1.0}, "ray worker CPUs must be above 0, got -1.0"),
    ],
)
def test_ray_options_refuse_what_ray_cannot_reserve(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        RayOptions(**fields)
    assert str(refused.value) == message


def test_fractions_of_a_gpu_are_reserved_as_given() -> None:
    options = RayOptions(worker_cpus=0.5, worker_gpus=0.25)
    assert options.actor_options() == {"num_cpus": 0.5, "num_gpus": 0.25, "max_restarts": 0}


def test_a_faked_job_starts_no_real_cluster(tmp_path: Path, fake_ray: FakeRay) -> None:
    import ray

    runner.invoke(app, command_args("synth", tmp_path, "--ray", "local"))
    assert not ray.is_initialized()  # the ledger went through the same seam as the workers
