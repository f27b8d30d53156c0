"""A vLLM server that journey starts, shares and stops itself: the `vllm:MODEL` spec.

vLLM pins its own torch and transformers, so it cannot live in journey's environment;
it runs as a subprocess from a separate one. Which program starts it, in this order:

1. the interpreter of the spec's `python=` option, e.g. `python=/opt/vllm/bin/python`,
2. else the interpreter in `$JOURNEY_VLLM_PYTHON`,
3. else the `vllm` executable on PATH.

An interpreter runs `PYTHON -m vllm.entrypoints.openai.api_server --model MODEL ...`;
the executable runs `vllm serve MODEL ...`. Either way the server listens on 127.0.0.1
at a free port, with the spec's server options as flags (`tensor_parallel_size=2`
becomes `--tensor-parallel-size 2`) and then the words of `$JOURNEY_VLLM_ARGS` (split
like a shell line, e.g. `--enforce-eager --max-num-seqs 64`), which come last and so
win over journey's own flags. Do not pass `--served-model-name`: the client asks for
the model by the name it was started with. `VLLMServerSettings` (`_vllm_settings`)
makes that command line; this module starts, shares and stops the process.

Clients whose server settings are equal share one server (a critic with `logprobs=true`
and a policy with `temperature=0.7` on the same model load it once). The server is
stopped (SIGTERM to its process group, SIGKILL after a grace period) when its last
client is closed or garbage-collected, at interpreter exit, and, on Linux, by the
kernel when journey itself dies without cleaning up. A server that dies under a
request fails it at once, naming its exit and log, instead of retrying a dead port.

`vllm_replicas` builds the client a spec names: one server, or `data_parallel=N`
replicas of it, one per GPU, behind a router.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from journey.agents.backends._child_process import (
    die_with_parent_hook,
    free_port,
    log_tail,
    signal_group,
)
from journey.agents.backends._vllm_settings import (
    API_SERVER_MODULE,
    CUDA_DEVICES_ENV,
    EXTRA_ARGS_ENV,
    HOST,
    PYTHON_ENV,
    VLLMServerSettings,
)
from journey.agents.backends.launched_server_client import LaunchedServerClient
from journey.errors import ModelUnavailableError

__all__ = [
    "API_SERVER_MODULE",
    "CUDA_DEVICES_ENV",
    "DEFAULT_START_TIMEOUT",
    "EXTRA_ARGS_ENV",
    "HOST",
    "PYTHON_ENV",
    "VLLMClient",
    "VLLMServer",
    "VLLMServerSettings",
]

logger = logging.getLogger(__name__)


DEFAULT_START_TIMEOUT = 900.0  # a 70B model on slow disks takes minutes to load

STOP_GRACE_SECONDS = 30.0
"""How long a server may take to exit after SIGTERM before it is killed."""

READY_POLL_SECONDS = 0.5
LOG_TAIL_LINES = 5


@dataclass
class _ServerProcess:
    """The process and its log; kept apart from `VLLMServer` so that the exit-time
    finalizer can stop it without keeping the server object alive."""

    process: subprocess.Popen[bytes]
    log_path: Path
    keep_log: bool = False
    """Left in place after a failure, whose message names it; removed otherwise."""

    def stop(self) -> None:
        if self.process.poll() is not None:
            self.keep_log = True  # it died on its own: its log says why
        else:
            signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Tensor-parallel workers live in the server's process group and may outlive it.
        signal_group(self.process.pid, signal.SIGKILL)
        if not self.keep_log:
            self.log_path.unlink(missing_ok=True)


_servers: dict[tuple[str, ...], VLLMServer] = {}
_servers_lock = threading.Lock()


class VLLMServer:
    """One vLLM server process on 127.0.0.1, shared by the clients that use it.

    Get one with `VLLMServer.acquire`, never the constructor, and pair it with `release`.
    """

    def __init__(self, settings: VLLMServerSettings) -> None:
        self.settings = settings
        self.port = free_port(HOST)  # never one another server of this process was given
        command = settings.command(self.port)
        self.base_url = f"http://{HOST}:{self.port}/v1"
        # A file journey/agents writes (see its docstring): the server's output goes to a
        # file, not a pipe (which would block the server once full if nobody read it), so
        # that an error can quote its last lines and name it for the rest.
        devices = settings.cuda_visible_devices
        gpus = "" if devices is None else f"gpu{devices.replace(',', '-')}-"
        log_fd, log_name = tempfile.mkstemp(prefix=f"journey-vllm-{gpus}", suffix=".log")
        self.log_path = Path(log_name)
        with os.fdopen(log_fd, "wb") as log:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own process group, so a stop reaches tensor-parallel workers too
                    # and a Ctrl-C in journey's terminal does not kill it mid-request.
                    start_new_session=True,
                    preexec_fn=die_with_parent_hook(),
                    env={**os.environ, **settings.environment()},
                )
            except OSError as error:
                self.log_path.unlink(missing_ok=True)
                raise ModelUnavailableError(
                    f"cannot start the vLLM server for {settings.model!r} "
                    f"({shlex.join(command[:3])}): {error}"
                ) from None
        logger.info(
            "starting vLLM server for %s (pid %d) at %s on %s, log %s",
            settings.model,
            process.pid,
            self.base_url,
            "the GPUs journey sees" if devices is None else f"{CUDA_DEVICES_ENV}={devices}",
            self.log_path,
        )
        self._process = _ServerProcess(process, self.log_path)
        self._stop_process = weakref.finalize(self, self._process.stop)  # also runs at exit
        self._started_at = time.monotonic()
        self._ready = False
        self._probing = False
        self._failure: str | None = None
        self._users = 0
        self._key = settings.sharing_key()

    @classmethod
    def acquire(cls, settings: VLLMServerSettings) -> VLLMServer:
        """The running server for these settings, started now if there is none.

        Raises:
            ModelSpecError: No interpreter or `vllm` executable to start it with.
            ModelUnavailableError: The server process could not be started.
        """
        key = settings.sharing_key()
        with _servers_lock:
            server = _servers.get(key)
            if server is None:
                server = _servers[key] = cls(settings)
            server._users += 1
            return server

    def share(self) -> VLLMServer:
        """One user more of this server, which has one already; pair it with `release`."""
        with _servers_lock:
            self._users += 1
        return self

    def release(self) -> None:
        """One user fewer; the last one stops the server."""
        with _servers_lock:
            self._users -= 1
            if self._users > 0:
                return
            if _servers.get(self._key) is self:
                del _servers[self._key]
        self._stop_process()

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def pid(self) -> int:
        return self._process.process.pid

    @property
    def running(self) -> bool:
        return self._process.process.poll() is None

    async def wait_until_ready(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Return once `GET /v1/models` answers 200; also checks that it has not died since.

        Args:
            timeout: Seconds since the server was started after which to give up.

        Raises:
            ModelUnavailableError: The server exited, or was not ready in time (it is
                stopped then). The message names the model and quotes the log's last lines.
        """
        while True:
            if self._failure is not None:
                raise ModelUnavailableError(self._failure)
            code = self._process.process.poll()
            if code is not None:
                when = "" if self._ready else " before it was ready"
                self._fail(f"exited with code {code}{when}")
            if self._ready:
                return
            if not self._probing:  # one probe at a time, however many requests wait
                self._probing = True
                try:
                    self._ready = await asyncio.to_thread(_lists_models, self.base_url)
                finally:
                    self._probing = False
                if self._ready:
                    logger.info("vLLM server for %s is ready at %s", self.model, self.base_url)
                    return
            if time.monotonic() - self._started_at >= timeout:
                self._fail(f"was not ready after {timeout:g} s (raise start_timeout=)")
            await asyncio.sleep(READY_POLL_SECONDS)

    def abandon(self, reason: str) -> None:
        """Stop the server for a fault outside it (another replica of its model could not
        start): every later wait raises `reason`. Blocks until the process is gone."""
        if self._failure is None:
            self._failure = reason
        self._stop_process()

    def _fail(self, what: str) -> NoReturn:
        """Stop the server, keep its log, and raise (now and on every later wait)."""
        self._process.keep_log = True
        self._stop_process()
        tail = " | ".join(log_tail(self.log_path, LOG_TAIL_LINES)) or "(empty)"
        if len(tail) > 500:
            tail = "..." + tail[-497:]
        self._failure = (
            f"vLLM server for {self.model!r} {what}; last log lines: {tail} "
            f"(full log: {self.log_path})"
        )
        raise ModelUnavailableError(self._failure)


class VLLMClient(LaunchedServerClient):
    """An OpenAI-compatible client for a vLLM server it holds a share of.

    Requests wait until the server is ready (or `load()` does it up front); `close()`
    gives up the share. vLLM continues a final assistant message, so label scoring
    honours its prefix.
    """

    def __init__(
        self,
        server: VLLMServer,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        **client_options: Any,
    ) -> None:
        """Use `server`, which must have been acquired for this client, and release it
        when closed or collected.

        Args:
            server: The acquired server; released on close, or here if the client
                cannot be built.
            start_timeout: Seconds from the server's start after which waiting for it fails.
            **client_options: `OpenAICompatibleClient` options (timeout, logprobs,
                temperature...).

        Raises:
            ConfigError: An option is out of range.
        """
        super().__init__(
            server,
            server.release,
            model=server.model,
            base_url=server.base_url,
            start_timeout=start_timeout,
            continue_final_message=True,
            **client_options,
        )
        self.server: VLLMServer = server


def _lists_models(base_url: str) -> bool:
    # No proxy: a $HTTP_PROXY would otherwise get the loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/models", timeout=2.0) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError, HTTPError, refused, timeout
        return False
