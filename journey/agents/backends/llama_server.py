"""llama.cpp's `llama-server`, started on loopback: a real OpenAI-compatible server on a CPU.

It serves one GGUF file (the embedded model's is `embedded_gguf_file`) with continuous
batching over `parallel` slots, and answers `/v1/chat/completions`, `/v1/completions`
and `/health`; llama.cpp serves its one model whatever name is asked for. Two users:

- the `llama:GGUF` backend (`llama_client`), which describes the server when its client
  is built, launches it at the first request or `load()`, waits for it without blocking
  the event loop (`wait_until_ready`), and stops it when its last client closes;
- conformance tests and benchmarks, which start it as a context manager and talk to it
  with an `openai:MODEL@URL` spec or `OpenAICompatibleClient`:

    binary = find_llama_server()
    with LlamaServer(binary, embedded_gguf_file(), parallel=8) as server:
        client = openai_client_from_spec("smollm2", server.base_url)

The binary is `$JOURNEY_LLAMA_SERVER`, else the first existing path given to
`find_llama_server`, else `llama-server` on PATH. The server binds 127.0.0.1 (it has no
API key) on a port chosen free when it is described, so that a client can be built for
its URL before it runs; it runs in its own process group, is killed by the kernel if
journey dies without stopping it (Linux), and its output goes to a temporary log that
an error quotes and keeps.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from journey.agents.backends._child_process import (
    die_with_parent_hook,
    free_port,
    log_tail,
    signal_group,
)
from journey.engine.model_store import embedded_gguf_file
from journey.errors import ModelUnavailableError

__all__ = [
    "EXTRA_ARGS_ENV",
    "LLAMA_SERVER_ENV",
    "LlamaServer",
    "embedded_gguf_file",
    "find_llama_server",
]

LLAMA_SERVER_ENV = "JOURNEY_LLAMA_SERVER"
"""Path of the `llama-server` binary to use."""
EXTRA_ARGS_ENV = "JOURNEY_LLAMA_ARGS"
"""More `llama-server` arguments for the servers `llama:` specs start (e.g. `-ngl 99`)."""

HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0
READY_POLL_SECONDS = 0.1
LOG_TAIL_LINES = 5


def find_llama_server(*candidates: Path) -> Path | None:
    """`$JOURNEY_LLAMA_SERVER`, else the first of `candidates` that is a file, else
    `llama-server` on PATH; None when there is none."""
    explicit = os.environ.get(LLAMA_SERVER_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("llama-server")
    return Path(found) if found else None


class LlamaServer:
    """One `llama-server` process serving one GGUF file on 127.0.0.1.

    `start` (or `with`) launches it and blocks until it is ready; `launch` and
    `wait_until_ready` do the same in two steps, the wait in an event loop. It runs once:
    after `stop`, or after a failure (which every later wait raises again), it stays down.
    """

    def __init__(
        self,
        binary: Path,
        model: Path,
        *,
        parallel: int = 8,
        context: int | None = None,
        threads: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Describe the server and choose its port; nothing runs yet.

        Args:
            binary: The `llama-server` executable.
            model: The GGUF file to serve.
            parallel: Slots, requests decoded together (`--parallel`).
            context: Total context in tokens over all slots (`-c`); default 2048 per
                slot; 0 is the model's own training context.
            threads: CPU threads (`-t`); default all cores.
            extra_args: More server arguments, placed last.
        """
        self.binary = binary
        self.model = model
        self.parallel = parallel
        self.context = context if context is not None else 2048 * parallel
        self.threads = threads if threads is not None else os.cpu_count() or 1
        self.extra_args = extra_args
        self.port = free_port(HOST)  # never one another server of this process was given
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one launch, and no launch after a stop
        self._launched_at = 0.0
        self._ready = False
        self._probing = False
        self._stopped = False
        self._failure: str | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI API root, e.g. http://127.0.0.1:40123/v1."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "-m", str(self.model),
            "--host", HOST,
            "--port", str(self.port),
            "--parallel", str(self.parallel),
            "-c", str(self.context),
            "-t", str(self.threads),
            "--no-webui",
            *self.extra_args,
        ]  # fmt: skip

    def launch(self) -> None:
        """Start the process unless it has been started already; returns at once.

        Call it from a long-lived thread (see `_child_process.die_with_parent_hook`).

        Raises:
            ModelUnavailableError: It could not be started, failed before, or was stopped.
        """
        with self._lock:
            if self._failure is not None:
                raise ModelUnavailableError(self._failure)
            if self._stopped:
                raise ModelUnavailableError(f"llama-server for {self.model.name} was stopped")
            if self._process is not None:
                return
            log_fd, log_name = tempfile.mkstemp(prefix="journey-llama-", suffix=".log")
            with os.fdopen(log_fd, "wb") as log:
                try:
                    self._process = subprocess.Popen(
                        self.command(),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=die_with_parent_hook(),
                    )
                except OSError as error:
                    Path(log_name).unlink(missing_ok=True)
                    self._failure = f"cannot start {self.binary}: {error}"
                    raise ModelUnavailableError(self._failure) from None
            self.log_path = Path(log_name)
            self._launched_at = time.monotonic()

    def start(self, timeout: float = 60.0) -> None:
        """Launch the server and return once `/health` answers 200.

        Raises:
            ModelUnavailableError: It could not be started, exited, or was not ready in
                `timeout` seconds (it is stopped then); the message quotes its log.
        """
        self.launch()
        while True:
            self._check(timeout)
            if self._healthy():
                self._ready = True
                self._check(timeout)  # our process, not another one on the port
                return
            time.sleep(READY_POLL_SECONDS)

    async def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Launch the server if needed and return once it is ready; once it is, only
        check that it has not died since (so a request to a dead server fails at once).

        Args:
            timeout: Seconds from the launch after which to give up.

        Raises:
            ModelUnavailableError: As `start`, or it exited after it was ready.
        """
        self.launch()
        while True:
            self._check(timeout)
            if self._ready:
                return
            if not self._probing:  # one probe at a time, however many requests wait
                self._probing = True
                try:
                    self._ready = await asyncio.to_thread(self._healthy)
                finally:
                    self._probing = False
                if self._ready:
                    self._check(timeout)  # our process, not another one on the port
                    return
            await asyncio.sleep(READY_POLL_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; the log is removed (unless a
        failure's message names it). A server never launched is just marked stopped."""
        with self._lock:
            self._stopped = True
            process = self._process
        if process is not None and process.poll() is None:
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would: requests in flight are cut off."""
        if self._process is not None and self._process.poll() is None:
            signal_group(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _check(self, timeout: float) -> None:
        """Raise when it failed before, has exited, or is still not ready after `timeout`."""
        if self._failure is not None:
            raise ModelUnavailableError(self._failure)
        assert self._process is not None  # launched
        code = self._process.poll()
        if code is not None:
            self._fail(f"exited with code {code}{'' if self._ready else ' before it was ready'}")
        if not self._ready and time.monotonic() - self._launched_at > timeout:
            self._fail(f"was not ready after {timeout:g} s")

    def _healthy(self) -> bool:
        # No proxy: a $HTTP_PROXY would otherwise get the loopback probe.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{HOST}:{self.port}/health", timeout=2.0) as response:
                return bool(response.status == 200)
        except (OSError, http.client.HTTPException):  # 503 while loading, refused, timeout
            return False

    def _fail(self, what: str) -> NoReturn:
        """Kill the server, keep its log, and raise (now and on every later wait)."""
        tail = " | ".join(log_tail(self.log_path, LOG_TAIL_LINES)) if self.log_path else ""
        if len(tail) > 500:
            tail = "..." + tail[-497:]
        log = self.log_path
        self.log_path = None  # kept for the user to read
        self.kill()
        self._failure = (
            f"llama-server for {self.model.name} {what}; last log lines: {tail or '(empty)'} "
            f"(full log: {log})"
        )
        raise ModelUnavailableError(self._failure)
