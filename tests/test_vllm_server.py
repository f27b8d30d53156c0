"""The `vllm:MODEL` backend against a fake vLLM: a `vllm` package written into tmp_path
whose `vllm.entrypoints.openai.api_server` runs the loopback stub of `_openai_server`,
so journey's real launch, readiness poll, requests and shutdown are exercised."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from autogen_core.models import UserMessage

from journey.agents.backends import (
    ClientPool,
    can_score_labels,
    create_client,
    parse_model_spec,
    vllm_server,
)
from journey.agents.backends.vllm_server import VLLMClient, VLLMServerSettings
from journey.errors import ConfigError, JourneyError, ModelSpecError, ModelUnavailableError

TESTS_DIR = Path(__file__).parent
MODEL = "fake-org/fake-7b"
PROMPT = [UserMessage(content="2+2?", source="user")]

FAKE_API_SERVER = textwrap.dedent(
    """
    import argparse, json, os, signal, sys, threading, time

    from _openai_server import OpenAIStubServer

    argv = sys.argv[1:]
    print("fake vllm argv: " + json.dumps(argv), flush=True)
    model = None
    if argv[:1] == ["serve"]:  # the `vllm serve MODEL ...` form
        model, argv = argv[1], argv[2:]
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=model)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args, _ = parser.parse_known_args(argv)
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    print("fake vllm devices: " + json.dumps(devices), flush=True)
    # FAKE_VLLM_MODE_ON_<GPUs> (commas as _) sets one replica's mode, FAKE_VLLM_MODE all.
    mode = os.environ.get("FAKE_VLLM_MODE", "serve")
    mode = os.environ.get(f"FAKE_VLLM_MODE_ON_{str(devices).replace(',', '_')}", mode)
    if mode == "crash":
        print("Traceback (most recent call last):", file=sys.stderr)
        print(f"ValueError: fake vllm cannot load {args.model}", file=sys.stderr)
        sys.exit(3)
    if mode == "hang":  # loads forever, never listens
        time.sleep(3600)
    if mode == "stubborn":  # ignores SIGTERM, only SIGKILL stops it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    assert args.host == "127.0.0.1", args.host
    stub = OpenAIStubServer(port=args.port, served_model=args.model)
    answer, printing = stub._next, threading.Lock()

    def logged(request):  # each request is a log line; a "slow" fake takes its time
        with printing:  # the handler threads' lines would interleave
            print("fake vllm request: " + request.path, flush=True)
        if mode == "slow":
            time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "1")))
        return answer(request)

    stub._next = logged
    stub.start()
    threading.Event().wait()
    """
)


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs the fake for subprocesses (PYTHONPATH) and as a `vllm` executable on PATH;
    returns the executable. No $JOURNEY_VLLM_* from the caller's environment leaks in."""
    package = tmp_path / "site" / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for directory in (package, package.parent, package.parent.parent):
        (directory / "__init__.py").write_text("")
    (package / "api_server.py").write_text(FAKE_API_SERVER)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "vllm"
    executable.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m vllm.entrypoints.openai.api_server "$@"\n'
    )
    executable.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), str(TESTS_DIR)]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    monkeypatch.delenv(vllm_server.PYTHON_ENV, raising=False)
    monkeypatch.delenv(vllm_server.EXTRA_ARGS_ENV, raising=False)
    monkeypatch.setattr(vllm_server, "READY_POLL_SECONDS", 0.05)
    monkeypatch.setattr(vllm_server, "STOP_GRACE_SECONDS", 5.0)
    return executable


def _spec(options: str = "") -> str:
    return f"vllm:{MODEL}?python={sys.executable}&start_timeout=30" + options


def _gone(pid: int) -> bool:
    """No such process, or only a zombie (killed; its new parent has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state == "Z"


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- specs and command lines ----------------------------------------------------------


def test_spec_parses_server_and_client_options():
    spec = parse_model_spec(
        "vllm:Qwen/Qwen2.5-7B-Instruct?python=/opt/vllm/bin/python&tensor_parallel_size=2"
        "&gpu_memory_utilization=0.85&max_model_len=8192&dtype=bfloat16&start_timeout=60"
        "&temperature=0.7&top_p=0.9&seed=3&timeout=30&max_retries=2&logprobs=true"
    )
    assert (spec.backend, spec.target, spec.base_url) == ("vllm", "Qwen/Qwen2.5-7B-Instruct", None)
    assert spec.options == {
        "python": "/opt/vllm/bin/python",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.85,
        "max_model_len": 8192,
        "dtype": "bfloat16",
        "start_timeout": 60.0,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "timeout": 30.0,
        "max_retries": 2,
        "logprobs": True,
    }
    assert parse_model_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("spec", "quoted"),
    [
        ("vllm:", "vllm:"),
        ("vllm:M?tensor_parallel_size=two", "tensor_parallel_size='two'"),
        ("vllm:M?gpu_memory_utilization=most", "gpu_memory_utilization='most'"),
        ("vllm:M?key_env=MY_KEY", "key_env"),
        ("vllm:M?max_batch_size=4", "max_batch_size"),
        ("vllm:M?port=8000", "port=8000"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, quoted: str):
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(spec)
    assert "\n" not in str(caught.value) and quoted in str(caught.value)


@pytest.mark.parametrize(
    ("options", "error", "quoted"),
    [
        ("&gpu_memory_utilization=1.5", ConfigError, "1.5"),
        ("&tensor_parallel_size=0", ConfigError, "tensor_parallel_size"),
        ("&max_model_len=0", ConfigError, "max_model_len"),
        ("&start_timeout=0", ConfigError, "start_timeout"),
        ("&timeout=0", ConfigError, "timeout"),
        ("&python=/no/such/python", ModelSpecError, "/no/such/python"),
    ],
)
def test_bad_values_fail_before_or_without_a_server(
    fake_vllm: Path, options: str, error: type[JourneyError], quoted: str
):
    spec = f"vllm:{MODEL}?python={sys.executable}{options}"  # a later python= wins
    with pytest.raises(error) as caught:
        create_client(parse_model_spec(spec))
    assert "\n" not in str(caught.value) and quoted in str(caught.value)
    assert vllm_server._servers == {}


def test_no_vllm_anywhere_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(vllm_server.PYTHON_ENV, raising=False)
    with pytest.raises(ModelSpecError, match=r"python=.*JOURNEY_VLLM_PYTHON.*PATH"):
        create_client(parse_model_spec(f"vllm:{MODEL}"))


def test_command_lines():
    settings = VLLMServerSettings(
        MODEL,
        python=sys.executable,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.9,
        max_model_len=4096,
        dtype="bfloat16",
        extra_args=("--enforce-eager", "--max-num-seqs", "8"),
    )
    assert settings.command(8123) == [
        sys.executable,
        *("-m", "vllm.entrypoints.openai.api_server", "--model", MODEL),
        *("--host", "127.0.0.1", "--port", "8123"),
        *("--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.9"),
        *("--max-model-len", "4096", "--dtype", "bfloat16"),
        *("--enforce-eager", "--max-num-seqs", "8"),  # last, so they win
    ]
    assert "8123" not in settings.sharing_key()


def test_command_line_with_vllm_on_path(fake_vllm: Path):
    command = VLLMServerSettings(MODEL).command(8123)
    assert command == [str(fake_vllm), "serve", MODEL, "--host", "127.0.0.1", "--port", "8123"]


# --- a running fake server --------------------------------------------------------------


async def test_completion_through_a_started_server(fake_vllm: Path):
    client = create_client(parse_model_spec(_spec("&logprobs=true&temperature=0.2")))
    assert isinstance(client, VLLMClient)
    server = client.server
    assert server.base_url.startswith("http://127.0.0.1:") and server.running
    assert can_score_labels(client)
    try:
        result = await client.create(PROMPT)  # waits for readiness on its own
        assert result.content == "ok"
        assert (client.total_usage().prompt_tokens, client.total_usage().completion_tokens) == (
            7,
            3,
        )
        assert server.log_path.is_file()
    finally:
        await client.close()
    assert not server.running and _gone(server.pid)
    assert not server.log_path.exists()  # a clean stop leaves no file behind
    assert vllm_server._servers == {}


async def test_interpreter_from_the_environment(fake_vllm: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(vllm_server.PYTHON_ENV, sys.executable)
    client = create_client(parse_model_spec(f"vllm:{MODEL}"))
    assert isinstance(client, VLLMClient)
    try:
        await client.load()
        assert _logged_argv(client)[:2] == ["--model", MODEL]  # the -m api_server form
    finally:
        await client.close()


async def test_vllm_executable_on_path(fake_vllm: Path):
    client = create_client(parse_model_spec(f"vllm:{MODEL}?temperature=0"))
    assert isinstance(client, VLLMClient)
    try:
        assert (await client.create(PROMPT)).content == "ok"
        assert _logged_argv(client)[:2] == ["serve", MODEL]
    finally:
        await client.close()
    assert _gone(client.server.pid)


async def test_two_roles_share_one_server(fake_vllm: Path):
    pool = ClientPool()
    policy = pool.get(_spec("&temperature=0.7"))
    critic = pool.get(_spec("&logprobs=true"))
    assert pool.get(_spec("&temperature=0.7")) is policy  # one spec, one client
    assert isinstance(policy, VLLMClient) and isinstance(critic, VLLMClient)
    assert policy is not critic and policy.server is critic.server
    server = policy.server
    try:
        # Requests from both roles wait together for the one server to come up.
        replies = await asyncio.gather(*(c.create(PROMPT) for c in (policy, critic) * 4))
        assert [r.content for r in replies] == ["ok"] * 8
        other = create_client(parse_model_spec(_spec("&max_model_len=2048")))
        assert isinstance(other, VLLMClient) and other.server is not server  # other flags
        await other.close()
        await critic.close()
        assert server.running  # the policy still holds it
    finally:
        await pool.close()
    assert _wait_gone(server.pid)


async def test_extra_args_reach_the_command_line(fake_vllm: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(vllm_server.EXTRA_ARGS_ENV, "--enforce-eager --chat-template '/t/a b.jinja'")
    client = create_client(
        parse_model_spec(_spec("&tensor_parallel_size=2&gpu_memory_utilization=0.5&dtype=half"))
    )
    assert isinstance(client, VLLMClient)
    try:
        await client.load()
        argv = _logged_argv(client)
    finally:
        await client.close()
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.5"
    assert argv[argv.index("--dtype") + 1] == "half"
    assert argv[-3:] == ["--enforce-eager", "--chat-template", "/t/a b.jinja"]


def _logged_argv(client: VLLMClient) -> list[str]:
    for line in client.server.log_path.read_text().splitlines():
        if line.startswith("fake vllm argv: "):
            return list(json.loads(line.removeprefix("fake vllm argv: ")))
    raise AssertionError("the fake server logged no argv")


# --- failures ---------------------------------------------------------------------------


async def test_a_server_that_exits_at_once_names_its_exit_and_log(
    fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash")
    client = create_client(parse_model_spec(_spec()))
    assert isinstance(client, VLLMClient)
    try:
        with pytest.raises(ModelUnavailableError) as caught:
            await client.load()
        message = str(caught.value)
        assert "\n" not in message
        assert MODEL in message and "exited with code 3 before it was ready" in message
        assert f"ValueError: fake vllm cannot load {MODEL}" in message
        assert str(client.server.log_path) in message and client.server.log_path.is_file()
        with pytest.raises(ModelUnavailableError, match="exited with code 3"):
            await client.create(PROMPT)  # requests fail the same way, without retrying
    finally:
        await client.close()
        client.server.log_path.unlink(missing_ok=True)


async def test_a_server_never_ready_times_out_and_is_stopped(
    fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_VLLM_MODE", "hang")
    client = create_client(parse_model_spec(_spec("&start_timeout=0.5")))
    assert isinstance(client, VLLMClient)
    try:
        started = time.monotonic()
        with pytest.raises(ModelUnavailableError) as caught:
            await client.load()
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert "\n" not in message and MODEL in message
        assert "was not ready after 0.5 s" in message and "start_timeout" in message
        assert _gone(client.server.pid)
    finally:
        await client.close()
        client.server.log_path.unlink(missing_ok=True)


async def test_a_server_that_ignores_sigterm_is_killed(
    fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_VLLM_MODE", "stubborn")
    monkeypatch.setattr(vllm_server, "STOP_GRACE_SECONDS", 0.3)
    client = create_client(parse_model_spec(_spec()))
    assert isinstance(client, VLLMClient)
    await client.load()
    await client.close()
    assert _gone(client.server.pid)


async def test_a_forgotten_client_stops_its_server_when_collected(fake_vllm: Path):
    client = create_client(parse_model_spec(_spec()))
    assert isinstance(client, VLLMClient)
    await client.load()
    server = client.server
    del client
    gc.collect()
    assert _gone(server.pid)
    assert vllm_server._servers == {}


_ORPHAN_CHECK = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from journey.agents.backends import create_client, parse_model_spec

    client = create_client(parse_model_spec(sys.argv[1]))
    asyncio.run(client.load())
    print(client.server.pid, client.server.log_path, flush=True)
    if sys.argv[2] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)  # no atexit: only the kernel can stop it
    """
)


@pytest.mark.parametrize("ending", ["exits", "killed"])
def test_no_server_outlives_journey(fake_vllm: Path, ending: str):
    done = subprocess.run(
        [sys.executable, "-c", _ORPHAN_CHECK, _spec(), ending],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    pid, log_path = done.stdout.split()
    Path(log_path).unlink(missing_ok=True)  # a killed journey cannot remove it
    assert done.returncode == (-signal.SIGKILL if ending == "killed" else 0), done.stderr
    assert _wait_gone(int(pid))
