"""`vllm:MODEL?data_parallel=N`: N fake vLLM servers (test_vllm_server's fake, which logs
its $CUDA_VISIBLE_DEVICES and each request), one per GPU, behind one routed client."""

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
from dataclasses import replace
from pathlib import Path

import pytest
from test_vllm_server import MODEL, PROMPT, _spec, _wait_gone, fake_vllm

from journey.agents.backends import (
    ClientPool,
    LoadableClient,
    can_score_labels,
    create_client,
    parse_model_spec,
    vllm_replicas,
    vllm_server,
)
from journey.agents.backends._vllm_settings import replica_devices
from journey.agents.backends.registry import backend
from journey.agents.backends.reply_identity import reply_identity
from journey.agents.backends.vllm_replicas import VLLMReplicasClient
from journey.agents.backends.vllm_server import VLLMClient, VLLMServer, VLLMServerSettings
from journey.errors import ConfigError, ModelSpecError, ModelUnavailableError

__all__ = ["fake_vllm"]  # the fixture, imported so pytest finds it


@pytest.fixture
def replicas_env(fake_vllm: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake vLLM, with no $CUDA_VISIBLE_DEVICES of the caller's: GPUs count from 0."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake_vllm


def _replicas(spec: str) -> VLLMReplicasClient:
    client = create_client(parse_model_spec(_spec(spec)))
    assert isinstance(client, VLLMReplicasClient)
    return client


def _servers(client: VLLMReplicasClient) -> list[VLLMServer]:
    return client.replicas.servers


def _logged(server: VLLMServer, prefix: str) -> list[str]:
    lines = server.log_path.read_text().splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def _devices(server: VLLMServer) -> str | None:
    (devices,) = _logged(server, "fake vllm devices: ")
    return json.loads(devices)  # type: ignore[no-any-return]


def _all_stopped(servers: list[VLLMServer]) -> bool:
    return all(_wait_gone(server.pid) for server in servers)


# --- which GPUs, and refusals -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data_parallel", "tensor_parallel", "gpus", "inherited", "devices"),
    [
        (1, None, None, None, [None]),  # one server sees what journey sees, as before
        (1, 2, None, "4,5", [None]),
        (1, None, "3", None, ["3"]),
        (2, None, None, None, ["0", "1"]),
        (3, 2, None, None, ["0,1", "2,3", "4,5"]),
        (2, None, None, "2,3", ["2", "3"]),  # journey's own GPUs, not 0 and 1
        (2, None, "4+6", "2,3", ["4", "6"]),  # gpus= wins, used as given
        (2, 2, "0,1,2,3", None, ["0,1", "2,3"]),
        (2, None, "0+1+2", None, ["0", "1"]),  # more than needed: the first ones
        (2, None, "GPU-8f3a-01+MIG-GPU-1/2/0", None, ["GPU-8f3a-01", "MIG-GPU-1/2/0"]),
    ],
)
def test_replica_devices(
    data_parallel: int,
    tensor_parallel: int | None,
    gpus: str | None,
    inherited: str | None,
    devices: list[str | None],
):
    assert replica_devices(data_parallel, tensor_parallel, gpus, inherited) == devices


def test_a_servers_gpus_are_its_environment_and_part_of_what_it_shares():
    plain = VLLMServerSettings(MODEL, python=sys.executable)
    pinned = replace(plain, cuda_visible_devices="2,3")
    assert pinned.command(8123) == plain.command(8123)  # no flag: vLLM reads the variable
    assert pinned.environment() == {"PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "2,3"}
    assert "CUDA_VISIBLE_DEVICES" not in plain.environment()
    assert pinned.sharing_key() != plain.sharing_key()  # one server per GPU set


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        ("&data_parallel=3&gpus=0+1", "data_parallel=3 needs 3 GPUs, but gpus='0+1' names 2"),
        (
            "&data_parallel=2&tensor_parallel_size=2&gpus=0+1+2",
            "data_parallel=2 times tensor_parallel_size=2 needs 4 GPUs, but gpus='0+1+2' names 3",
        ),
        ("&data_parallel=2&gpus=0+0", "gpus='0+0' names GPU 0 twice"),
        ("&gpus=a+b", "gpus='a+b': 'a' is not a GPU number or UUID"),
        ("&data_parallel=2&gpus=0++1", "'' is not a GPU number"),
    ],
)
def test_too_few_or_malformed_gpus_fail_before_any_server(
    replicas_env: Path, options: str, quoted: str
):
    with pytest.raises(ConfigError) as caught:
        create_client(parse_model_spec(_spec(options)))
    assert "\n" not in str(caught.value) and quoted in str(caught.value)
    assert vllm_server._servers == {} and vllm_replicas._groups == {}


def test_journeys_own_gpus_are_counted(replicas_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    with pytest.raises(ConfigError, match=r"needs 2 GPUs, but \$CUDA_VISIBLE_DEVICES='5' names 1"):
        create_client(parse_model_spec(_spec("&data_parallel=2")))
    assert vllm_server._servers == {}


@pytest.mark.parametrize(
    ("option", "quoted"), [("data_parallel=0", "at least 1"), ("data_parallel=two", "'two'")]
)
def test_bad_data_parallel_is_a_spec_error(option: str, quoted: str):
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(f"vllm:org/model?{option}")
    assert "\n" not in str(caught.value) and quoted in str(caught.value)


def test_replicas_are_one_model_to_the_response_cache():
    one = parse_model_spec("vllm:org/model?temperature=0.7")
    four = parse_model_spec("vllm:org/model?temperature=0.7&data_parallel=4&gpus=0,1,2,3")
    assert four.options["data_parallel"] == 4 and four.options["gpus"] == "0,1,2,3"
    assert parse_model_spec(str(four)) == four
    assert reply_identity(four) == reply_identity(one)
    for name in ("data_parallel", "gpus"):
        declared = backend("vllm").option(name)
        assert declared is not None and not declared.affects_replies and not declared.agent


# --- running replicas ---------------------------------------------------------------------


async def test_two_replicas_on_their_own_gpus_both_get_requests(replicas_env: Path):
    client = _replicas("&data_parallel=2&logprobs=true")
    servers = _servers(client)
    assert isinstance(client, LoadableClient) and can_score_labels(client)
    assert len({s.base_url for s in servers}) == 2 and len({s.log_path for s in servers}) == 2
    try:
        await client.load()
        assert [_devices(s) for s in servers] == ["0", "1"]
        replies = await asyncio.gather(*(client.create(PROMPT) for _ in range(8)))
        assert [r.content for r in replies] == ["ok"] * 8
        served = [len(_logged(s, "fake vllm request: ")) for s in servers]
        assert sum(served) == 8 and min(served) >= 2, served
        stats = client.stats()
        assert [s.name for s in stats] == [
            "vllm:fake-org/fake-7b replica 0 (GPU 0)",
            "vllm:fake-org/fake-7b replica 1 (GPU 1)",
        ]
        assert [s.requests for s in stats] == served and all(s.healthy for s in stats)
    finally:
        await client.close()
    assert _all_stopped(servers)
    assert not any(s.log_path.exists() for s in servers)  # a clean stop leaves no file
    assert vllm_server._servers == {} and vllm_replicas._groups == {}
    await client.close()  # twice is fine


async def test_gpus_and_tensor_parallel_choose_each_replicas_gpus(replicas_env: Path):
    client = _replicas("&data_parallel=2&tensor_parallel_size=2&gpus=4+5+6+7")
    try:
        await client.load()
        servers = _servers(client)
        assert [_devices(s) for s in servers] == ["4,5", "6,7"]
        for server in servers:
            (argv,) = _logged(server, "fake vllm argv: ")
            assert '"--tensor-parallel-size", "2"' in argv
        assert client.stats()[1].name.endswith("replica 1 (GPUs 6,7)")
    finally:
        await client.close()


async def test_one_server_may_be_pinned_to_a_gpu(replicas_env: Path):
    client = create_client(parse_model_spec(_spec("&gpus=3")))
    assert isinstance(client, VLLMClient)  # one server: no router
    try:
        await client.load()
        assert _devices(client.server) == "3"
        assert client.server.log_path.name.startswith("journey-vllm-gpu3-")
    finally:
        await client.close()


async def test_a_replica_killed_mid_run_costs_no_request(replicas_env: Path):
    client = _replicas("&data_parallel=2")
    dead = _servers(client)[1]
    try:
        await client.load()
        os.killpg(dead.pid, signal.SIGKILL)
        assert _wait_gone(dead.pid)
        started = time.monotonic()
        replies = await asyncio.gather(*(client.create(PROMPT) for _ in range(6)))
        assert [r.content for r in replies] == ["ok"] * 6
        assert time.monotonic() - started < 3  # no retries against the dead port
        stats = client.stats()
        assert stats[0].healthy and not stats[1].healthy
        assert "exited with code -9" in (stats[1].last_error or "")
        await client.load()  # every replica started once: still loaded
    finally:
        await client.close()
        dead.log_path.unlink(missing_ok=True)  # kept: it died on its own
    assert _all_stopped(_servers(client))


async def test_a_replica_killed_under_its_requests_costs_none(
    replicas_env: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_VLLM_MODE_ON_1", "slow")
    monkeypatch.setenv("FAKE_VLLM_DELAY", "30")
    client = _replicas("&data_parallel=2")
    dead = _servers(client)[1]
    try:
        await client.load()
        started = time.monotonic()
        requests = asyncio.gather(*(client.create(PROMPT) for _ in range(6)))
        while not _logged(dead, "fake vllm request: "):  # one is stuck on replica 1
            await asyncio.sleep(0.02)
        os.killpg(dead.pid, signal.SIGKILL)
        replies = await asyncio.wait_for(requests, 10)
        assert [r.content for r in replies] == ["ok"] * 6
        assert time.monotonic() - started < 5  # neither the slow reply nor backoffs
        assert not client.stats()[1].healthy
    finally:
        await client.close()
        dead.log_path.unlink(missing_ok=True)


async def test_a_replica_that_cannot_start_stops_the_others(
    replicas_env: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FAKE_VLLM_MODE_ON_0", "hang")  # would never be ready: not waited for
    monkeypatch.setenv("FAKE_VLLM_MODE_ON_1", "crash")
    client = _replicas("&data_parallel=2")
    hanging, crashed = _servers(client)
    try:
        started = time.monotonic()
        with pytest.raises(ModelUnavailableError) as caught:
            await client.load()
        assert time.monotonic() - started < 10
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("vllm:fake-org/fake-7b replica 1 (GPU 1) could not start")
        assert "stopped the other 1 replica:" in message
        assert "exited with code 3 before it was ready" in message
        assert "ValueError: fake vllm cannot load fake-org/fake-7b" in message  # its log's tail
        assert str(crashed.log_path) in message and crashed.log_path.is_file()
        assert _wait_gone(hanging.pid) and _wait_gone(crashed.pid)
        with pytest.raises(ModelUnavailableError) as again:
            await client.create(PROMPT)  # requests fail the same way, not "all endpoints"
        assert str(again.value) == message
    finally:
        await client.close()
        crashed.log_path.unlink(missing_ok=True)
    assert vllm_server._servers == {} and vllm_replicas._groups == {}


async def test_two_roles_share_the_replicas(replicas_env: Path):
    pool = ClientPool()
    policy = pool.get(_spec("&data_parallel=2&temperature=0.7"))
    critic = pool.get(_spec("&data_parallel=2&logprobs=true"))
    assert isinstance(policy, VLLMReplicasClient) and isinstance(critic, VLLMReplicasClient)
    assert policy is not critic and policy.replicas is critic.replicas
    servers = _servers(policy)
    try:
        replies = await asyncio.gather(*(c.create(PROMPT) for c in (policy, critic) * 3))
        assert [r.content for r in replies] == ["ok"] * 6
        await critic.close()
        assert all(s.running for s in servers)  # the policy still holds them
    finally:
        await pool.close()
    assert _all_stopped(servers)
    assert vllm_server._servers == {} and vllm_replicas._groups == {}


async def test_a_forgotten_client_stops_its_replicas_when_collected(replicas_env: Path):
    client = _replicas("&data_parallel=2")
    await client.load()
    servers = _servers(client)
    del client
    gc.collect()
    assert _all_stopped(servers)
    assert vllm_server._servers == {} and vllm_replicas._groups == {}


_ORPHAN_CHECK = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from journey.agents.backends import create_client, parse_model_spec

    client = create_client(parse_model_spec(sys.argv[1]))
    asyncio.run(client.load())
    for server in client.replicas.servers:
        print(server.pid, server.log_path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit: only the kernel can stop them
    """
)


def test_no_replica_outlives_a_killed_journey(replicas_env: Path):
    done = subprocess.run(
        [sys.executable, "-c", _ORPHAN_CHECK, _spec("&data_parallel=2")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    replicas = [line.split() for line in done.stdout.splitlines()]
    assert len(replicas) == 2
    for pid, log_path in replicas:
        Path(log_path).unlink(missing_ok=True)
        assert _wait_gone(int(pid))
