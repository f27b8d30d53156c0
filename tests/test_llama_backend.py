"""The `llama:GGUF` backend: llama.cpp's `llama-server`, which journey starts itself.

Spec parsing, option checks, the cache identity and the errors for a missing binary or
GGUF run offline, against fake `llama-server` shell scripts written into tmp_path (one
that records its arguments and exits, one that never becomes ready). The end-to-end
test starts the real server: `$JOURNEY_LLAMA_SERVER`, else `../shared/bin/llama-server`
beside the repository, else `llama-server` on PATH, on the embedded model's GGUF; it is
skipped, with the reason, where there is none.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from autogen_core.models import UserMessage

from journey.agents.backends import ClientPool, create_client, parse_model_spec
from journey.agents.backends.llama_backend import gguf_fingerprint
from journey.agents.backends.llama_client import LlamaClient
from journey.agents.backends.llama_server import (
    EXTRA_ARGS_ENV,
    LLAMA_SERVER_ENV,
    embedded_gguf_file,
    find_llama_server,
)
from journey.agents.backends.registry import backend
from journey.agents.backends.reply_identity import reply_identity
from journey.errors import ConfigError, ModelSpecError, ModelUnavailableError

REPO = Path(__file__).resolve().parents[1]
SHARED_BINARY = REPO.parent / "shared" / "bin" / "llama-server"
ASK = [UserMessage(content="What is 2+2?", source="user")]


def llama_server_or_skip() -> Path:
    """The real `llama-server` and the embedded GGUF it serves, or a skip saying why."""
    binary = find_llama_server(SHARED_BINARY)
    if binary is None:
        given = os.environ.get(LLAMA_SERVER_ENV)
        where = f"${LLAMA_SERVER_ENV}={given!r} is no file" if given else f"no {SHARED_BINARY}"
        pytest.skip(
            f"no llama-server binary ({where}, none on PATH): set ${LLAMA_SERVER_ENV} or "
            "build one with ../shared/bin/build-llama-server.sh"
        )
    try:
        embedded_gguf_file()
    except ModelUnavailableError as error:
        pytest.skip(f"no embedded GGUF file for llama-server: {error}")
    return binary


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    """A file where a GGUF is expected; the fake servers never read it."""
    path = tmp_path / "tiny.Q4_0.gguf"
    path.write_bytes(b"GGUF fake")
    return path


@pytest.fixture
def crashing(tmp_path: Path) -> Path:
    """A fake llama-server that writes its arguments to args.txt, complains and exits 3."""
    return _script(
        tmp_path / "llama-server",
        f'echo "$@" > {tmp_path}/args.txt\necho "error: cannot load model $2" >&2\nexit 3',
    )


@pytest.fixture(autouse=True)
def _no_extra_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_ARGS_ENV, raising=False)


# --- specs and options, offline ------------------------------------------------------------


def test_the_spec_parses_with_every_option_and_round_trips() -> None:
    text = (
        "llama:~/models/q.gguf?parallel=4&ctx_size=8192&threads=2&binary=/opt/llama-server"
        "&start_timeout=30&temperature=0.7&top_p=0.9&seed=1&timeout=20&max_retries=2"
        "&logprobs=true&max_tokens=64&concurrency=3&price_in=0&rpm=60"
    )
    spec = parse_model_spec(text)
    assert (spec.backend, spec.target, spec.base_url) == ("llama", "~/models/q.gguf", None)
    assert spec.options["parallel"] == 4 and spec.options["ctx_size"] == 8192
    assert spec.options["binary"] == "/opt/llama-server" and spec.options["logprobs"] is True
    assert parse_model_spec(str(spec)) == spec
    assert parse_model_spec("llama:embedded").target == "embedded"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("llama", "unknown model spec 'llama'"),
        ("llama:m.gguf?parallel=0", "parallel=0 .* must be at least 1"),
        ("llama:m.gguf?threads=0", "threads=0 .* must be at least 1"),
        ("llama:m.gguf?ctx_size=-1", "ctx_size=-1 .* must be at least 0"),
        ("llama:m.gguf?parallel=many", "must be a int"),
        ("llama:m.gguf?tensor_parallel_size=2", "do not apply to llama models"),
        ("llama:m.gguf?key_env=KEY", "do not apply to llama models"),
        ("openai:m?parallel=2", "do not apply to openai models"),
    ],
)
def test_bad_specs_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message) as caught:
        parse_model_spec(text)
    assert "\n" not in str(caught.value)


def test_server_and_transport_options_stay_out_of_the_cache_identity(gguf: Path) -> None:
    base = reply_identity(parse_model_spec(f"llama:{gguf}?temperature=0.5"))
    same = f"llama:{gguf}?temperature=0.5&parallel=2&threads=1&binary=/x&start_timeout=9&timeout=5"
    assert reply_identity(parse_model_spec(same)) == base
    assert reply_identity(parse_model_spec(f"llama:{gguf}?temperature=0.5&ctx_size=512")) != base
    assert reply_identity(parse_model_spec(f"llama:{gguf}?temperature=0.9")) != base
    assert backend("llama").seeded_by_default  # llama-server takes a seed per request


def test_the_fingerprint_is_the_files_size_and_time(gguf: Path, tmp_path: Path) -> None:
    spec = parse_model_spec(f"llama:{gguf}")
    first = gguf_fingerprint(spec)
    assert first is not None and first == gguf_fingerprint(spec)
    os.utime(gguf, ns=(0, gguf.stat().st_mtime_ns + 1_000_000_000))  # replaced in place
    assert gguf_fingerprint(spec) not in (None, first)
    assert gguf_fingerprint(parse_model_spec(f"llama:{tmp_path}/gone.gguf")) is None
    embedded = gguf_fingerprint(parse_model_spec("llama:embedded"))
    assert embedded is not None and "SmolLM2-135M-Instruct" in embedded


# --- missing pieces are one line, before anything starts -------------------------------------


def test_a_missing_binary_option_is_one_line(gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="does not exist or is not executable") as caught:
        create_client(parse_model_spec(f"llama:{gguf}?binary={tmp_path}/nope"))
    assert "\n" not in str(caught.value) and f"{tmp_path}/nope" in str(caught.value)


def test_a_missing_binary_in_the_environment_is_one_line(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LLAMA_SERVER_ENV, str(tmp_path / "nope"))
    with pytest.raises(ModelSpecError, match=f"\\${LLAMA_SERVER_ENV}=.* is not a file"):
        create_client(parse_model_spec(f"llama:{gguf}"))


def test_no_binary_anywhere_says_how_to_give_one(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LLAMA_SERVER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModelSpecError, match="no llama-server on PATH; give binary=") as caught:
        create_client(parse_model_spec(f"llama:{gguf}"))
    assert "\n" not in str(caught.value)


def test_a_missing_gguf_is_one_line(crashing: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match=r"GGUF file .*gone\.gguf.* does not exist") as caught:
        create_client(parse_model_spec(f"llama:{tmp_path}/gone.gguf?binary={crashing}"))
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "args.txt").exists()  # nothing was started


async def test_a_bad_start_timeout_is_refused(gguf: Path, crashing: Path) -> None:
    with pytest.raises(ConfigError, match="start_timeout must be positive"):
        create_client(parse_model_spec(f"llama:{gguf}?binary={crashing}&start_timeout=0"))


# --- the server's life, against fakes ----------------------------------------------------------


async def test_the_server_starts_at_load_with_the_spec_options_and_its_failure_is_one_line(
    gguf: Path, crashing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EXTRA_ARGS_ENV, "--no-mmap -ngl 0")
    spec = f"llama:{gguf}?binary={crashing}&parallel=2&ctx_size=4096&threads=1"
    client = create_client(parse_model_spec(spec))
    assert isinstance(client, LlamaClient)
    assert not (tmp_path / "args.txt").exists()  # described, not started
    try:
        with pytest.raises(ModelUnavailableError) as caught:
            await client.load()
        message = str(caught.value)
        assert "\n" not in message
        assert "exited with code 3 before it was ready" in message
        assert f"error: cannot load model {gguf}" in message and "full log:" in message
        args = (tmp_path / "args.txt").read_text().split()
        assert args[:2] == ["-m", str(gguf)] and args[-3:] == ["--no-mmap", "-ngl", "0"]
        assert "--parallel 2 -c 4096 -t 1" in " ".join(args)
        with pytest.raises(ModelUnavailableError, match="exited with code 3"):
            await client.create(ASK)  # every later request says the same, no retries
        assert client.retry_count == 0
    finally:
        await client.close()
    Path(message.rsplit("full log: ", 1)[1].rstrip(")")).unlink()  # kept for the user


async def test_a_server_that_is_never_ready_is_stopped_after_start_timeout(
    gguf: Path, tmp_path: Path
) -> None:
    hanging = _script(tmp_path / "llama-server", "exec sleep 60")
    client = create_client(parse_model_spec(f"llama:{gguf}?binary={hanging}&start_timeout=0.5"))
    assert isinstance(client, LlamaClient)
    try:
        with pytest.raises(ModelUnavailableError, match=r"was not ready after 0\.5 s") as caught:
            await client.load()
        assert not client.server.running  # killed, not left behind
    finally:
        await client.close()
    Path(str(caught.value).rsplit("full log: ", 1)[1].rstrip(")")).unlink()


async def test_clients_with_equal_server_settings_share_one_server(
    gguf: Path, crashing: Path
) -> None:
    pool = ClientPool()
    base = f"llama:{gguf}?binary={crashing}"
    policy = pool.get(f"{base}&temperature=0.7")
    critic = pool.get(f"{base}&logprobs=true&parallel=8")  # 8 is the default
    other = pool.get(f"{base}&parallel=2")
    assert isinstance(policy, LlamaClient) and isinstance(critic, LlamaClient)
    assert isinstance(other, LlamaClient)
    assert policy is not critic and policy.server is critic.server
    assert other.server is not policy.server
    await policy.close()
    policy.server.launch()  # the critic still holds it: it may start
    await pool.close()
    with pytest.raises(ModelUnavailableError, match="was stopped"):
        policy.server.launch()  # stopped with its last client
    assert not policy.server.running and not other.server.running


# --- the real llama-server -----------------------------------------------------------------


async def test_the_real_server_answers_and_is_gone_after_close() -> None:
    binary = llama_server_or_skip()
    spec = f"llama:embedded?binary={binary}&parallel=1&threads=1&ctx_size=2048&temperature=1"
    client = create_client(parse_model_spec(spec))
    assert isinstance(client, LlamaClient)
    try:
        assert client.server.pid is None  # nothing runs before the first request
        result = await client.create(ASK, extra_create_args={"max_tokens": 8, "seed": 7})
        again = await client.create(ASK, extra_create_args={"max_tokens": 8, "seed": 7})
        pid = client.server.pid
        assert pid is not None and client.server.running
        log = client.server.log_path
    finally:
        await client.close()
    assert isinstance(result.content, str) and result.content
    assert 0 < result.usage.completion_tokens <= 8 and result.usage.prompt_tokens > 0
    assert again.content == result.content  # the seed travels with each request
    assert not client.server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert log is not None and not log.exists()  # a clean stop leaves no log
    await client.close()  # twice is fine


def test_the_backend_is_listed_by_journey_models() -> None:
    from typer.testing import CliRunner

    from journey.cli import app

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "  syntax: llama:GGUF" in result.output.splitlines()
