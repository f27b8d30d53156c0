"""Data-parallel vLLM: `data_parallel=N` servers of one model, one per GPU, behind a router.

    vllm:Qwen/Qwen2.5-7B-Instruct?data_parallel=4                  GPUs 0, 1, 2 and 3
    vllm:Qwen/Qwen2.5-7B-Instruct?data_parallel=2&gpus=4+5         GPUs 4 and 5
    vllm:Qwen/Qwen2.5-72B-Instruct?data_parallel=2&tensor_parallel_size=4   0-3 and 4-7

Replica i sees only its own GPUs (`$CUDA_VISIBLE_DEVICES`, from
`_vllm_settings.replica_devices`) and has its own port and log. Journey starts them all
at once and waits until every one answers; one that cannot start stops the others and
fails with its name, its GPUs and the tail of its log (a run on fewer replicas than
asked for would be slower than the user planned, silently). Once they are up, each
request goes to the least-loaded replica that is up (`RoutedClient`): one that dies
mid-run is taken out and its requests are sent to the others. It is not restarted.

Replicas are one model, so the response cache does not see them (`data_parallel` and
`gpus` do not affect replies). Clients whose server settings are equal share the
replicas, as they share a single server (`vllm_server`); closing the last one stops
every replica, all at once.

`vllm_client_from_spec` builds the client any `vllm:` spec names: a `VLLMClient` for one
server, a `VLLMReplicasClient` for several.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from autogen_core.models import ChatCompletionClient

from journey.agents.backends import vllm_server
from journey.agents.backends._vllm_settings import (
    CUDA_DEVICES_ENV,
    EXTRA_ARGS_ENV,
    PYTHON_ENV,
    VLLMServerSettings,
    replica_devices,
)
from journey.agents.backends.routed import Endpoint, RoutedClient
from journey.agents.backends.vllm_server import DEFAULT_START_TIMEOUT, VLLMClient, VLLMServer
from journey.errors import ConfigError, ModelUnavailableError

__all__ = ["VLLMReplicas", "VLLMReplicasClient", "replica_name", "vllm_client_from_spec"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_groups: dict[tuple[tuple[str, ...], ...], VLLMReplicas] = {}
_groups_lock = threading.Lock()


def replica_name(settings: VLLMServerSettings, index: int) -> str:
    """How errors, logs and endpoint stats name a replica: its model, number and GPUs."""
    devices = settings.cuda_visible_devices or "?"
    gpus = "GPUs" if "," in devices else "GPU"
    return f"vllm:{settings.model} replica {index} ({gpus} {devices})"


class VLLMReplicas:
    """The replicas of one model, shared by the clients that use them: started together,
    ready when every one is, stopped together.

    Get them with `VLLMReplicas.acquire`, never the constructor, and pair it with `release`.
    """

    def __init__(self, settings: Sequence[VLLMServerSettings]) -> None:
        self.names = [replica_name(one, index) for index, one in enumerate(settings)]
        self.servers: list[VLLMServer] = []
        try:
            for name, one in zip(self.names, settings, strict=True):
                try:
                    self.servers.append(VLLMServer.acquire(one))
                except ModelUnavailableError as error:
                    raise ModelUnavailableError(f"{name}: {error}") from None
        except BaseException:
            _release_all(self.servers)  # the ones started already
            raise
        self._key = tuple(one.sharing_key() for one in settings)
        self._users = 0
        self._ready = False
        self._starting = False
        self._failure: str | None = None

    @classmethod
    def acquire(cls, settings: Sequence[VLLMServerSettings]) -> VLLMReplicas:
        """The running replicas for these settings (one per replica), started now if none.

        Raises:
            ModelSpecError: No interpreter or `vllm` executable to start them with.
            ModelUnavailableError: A replica's process could not be started (the ones
                started before it are stopped).
        """
        key = tuple(one.sharing_key() for one in settings)
        with _groups_lock:
            group = _groups.get(key)
            if group is None:
                group = _groups[key] = cls(settings)
            group._users += 1
            return group

    def release(self) -> None:
        """One user fewer; the last one stops every replica."""
        with _groups_lock:
            self._users -= 1
            if self._users > 0:
                return
            if _groups.get(self._key) is self:
                del _groups[self._key]
        _release_all(self.servers)

    @property
    def model(self) -> str:
        return self.servers[0].model

    async def wait_until_ready(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Return once every replica is ready. Later deaths are the router's business.

        Args:
            timeout: Seconds since a replica was started after which it has failed.

        Raises:
            ModelUnavailableError: A replica exited or was not ready in time: every other
                replica is stopped, and the message names it and quotes its log's tail.
        """
        while True:
            if self._failure is not None:
                raise ModelUnavailableError(self._failure)
            if self._ready:
                return
            if not self._starting:  # one waits for the servers; the rest wait for it
                self._starting = True
                try:
                    await self._wait_for_all(timeout)
                finally:
                    self._starting = False
            else:
                await asyncio.sleep(vllm_server.READY_POLL_SECONDS)

    async def _wait_for_all(self, timeout: float) -> None:
        waits = [asyncio.create_task(s.wait_until_ready(timeout)) for s in self.servers]
        try:  # the first failure ends the wait: the others need not load for nothing
            await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        failed = [
            (index, error)
            for index, wait in enumerate(waits)
            if not wait.cancelled() and (error := wait.exception()) is not None
        ]
        if not failed:
            self._ready = True
            logger.info("all %d vLLM replicas of %s are ready", len(self.servers), self.model)
            return
        index, error = failed[0]
        others = [server for i, server in enumerate(self.servers) if i != index]
        self._failure = (
            f"{self.names[index]} could not start, so journey stopped the other "
            f"{len(others)} replica{'s' if len(others) != 1 else ''}: {error}"
        )
        await asyncio.gather(*(asyncio.to_thread(s.abandon, self._failure) for s in others))
        raise ModelUnavailableError(self._failure)


class VLLMReplicasClient(RoutedClient):
    """A client of a model's vLLM replicas: each request to the least-loaded one that is
    up (see `RoutedClient`), after every one has started.

    Requests wait until every replica is ready (or `load()` does it up front); `close()`
    gives up the share of the replicas.
    """

    def __init__(
        self,
        replicas: VLLMReplicas,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        **client_options: Any,
    ) -> None:
        """Use `replicas`, which must have been acquired for this client, and release
        them when closed or collected.

        Args:
            replicas: The acquired replicas; released on close, or here if the client
                cannot be built.
            start_timeout: Seconds from a replica's start after which waiting for it fails.
            **client_options: `OpenAICompatibleClient` options, the same for every replica.

        Raises:
            ConfigError: An option is out of range.
        """
        try:
            if start_timeout <= 0:
                raise ConfigError(f"start_timeout must be positive, got {start_timeout!r}")
            # The first client refuses bad options before the others are built; each holds
            # a share of its server, released when it is closed or collected.
            endpoints = [
                Endpoint(
                    name, VLLMClient(server.share(), start_timeout=start_timeout, **client_options)
                )
                for name, server in zip(replicas.names, replicas.servers, strict=True)
            ]
            super().__init__(endpoints)
        except BaseException:
            replicas.release()
            raise
        self.replicas = replicas
        self._start_timeout = start_timeout
        self._give_up_replicas = weakref.finalize(self, replicas.release)

    async def load(self) -> None:
        """Wait until every replica is ready (the first request would wait anyway).

        Raises:
            ModelUnavailableError: A replica exited or was not ready within
                start_timeout; the others have been stopped.
        """
        await self.replicas.wait_until_ready(self._start_timeout)

    async def _route(self, call: Callable[[ChatCompletionClient], Awaitable[_T]]) -> _T:
        await self.load()  # a replica that cannot start fails requests in its own words
        return await super()._route(call)

    async def close(self) -> None:
        try:
            await super().close()
        finally:  # the last user waits while the replicas stop (a grace period at most)
            await asyncio.to_thread(self._give_up_replicas)


def vllm_client_from_spec(
    model: str,
    *,
    python: str | None = None,
    tensor_parallel_size: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    dtype: str | None = None,
    data_parallel: int = 1,
    gpus: str | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    **client_options: Any,
) -> VLLMClient | VLLMReplicasClient:
    """Start (or share) the vLLM server or servers for `model` and return a client.

    The servers start loading at once; this returns without waiting for them.

    Args:
        model: Hugging Face model id or local directory (`~` is expanded).
        python: Interpreter with vllm installed; default `$JOURNEY_VLLM_PYTHON`, else the
            `vllm` executable on PATH.
        tensor_parallel_size: `--tensor-parallel-size`: GPUs per server.
        gpu_memory_utilization: `--gpu-memory-utilization`.
        max_model_len: `--max-model-len`.
        dtype: `--dtype`.
        data_parallel: Servers of the model, each on its own GPUs (see the module docstring).
        gpus: The GPUs they take, e.g. "0+1+2+3"; default `$CUDA_VISIBLE_DEVICES`, else
            0, 1, 2... (`_vllm_settings.replica_devices`).
        start_timeout: Seconds a server may take to become ready.
        **client_options: Client options: temperature, top_p, seed, timeout,
            max_retries, logprobs.

    Raises:
        ConfigError: An option is out of range, or there are fewer GPUs than
            data_parallel times tensor_parallel_size.
        ModelSpecError: No interpreter or `vllm` executable to start a server with.
        ModelUnavailableError: A server process could not be started.

    Example:
        >>> vllm_client_from_spec("Qwen/Qwen2.5-7B-Instruct", data_parallel=2, gpus="0+1")
    """
    if model.startswith("~"):
        model = str(Path(model).expanduser())
    settings = VLLMServerSettings(
        model,
        python=python or os.environ.get(PYTHON_ENV) or None,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        dtype=dtype,
        extra_args=tuple(shlex.split(os.environ.get(EXTRA_ARGS_ENV, ""))),
    )
    devices = replica_devices(
        data_parallel, tensor_parallel_size, gpus, os.environ.get(CUDA_DEVICES_ENV)
    )
    if start_timeout <= 0:  # checked before a server is started for nothing
        raise ConfigError(f"start_timeout must be positive, got {start_timeout!r}")
    replicas = [replace(settings, cuda_visible_devices=gpu) for gpu in devices]
    if len(replicas) == 1:
        server = VLLMServer.acquire(replicas[0])
        return VLLMClient(server, start_timeout=start_timeout, **client_options)
    group = VLLMReplicas.acquire(replicas)
    return VLLMReplicasClient(group, start_timeout=start_timeout, **client_options)


def _release_all(servers: Sequence[VLLMServer]) -> None:
    """Give up a share of each server at once: the last share of each stops it, and the
    stops overlap instead of waiting out one grace period after another."""
    stopping = []
    for server in servers:
        thread = threading.Thread(target=server.release, name="journey-vllm-stop")
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown: no new threads, so stop it here
            server.release()
            continue
        stopping.append(thread)
    for thread in stopping:
        thread.join()
