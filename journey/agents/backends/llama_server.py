"""llama.cpp's `llama-server`, started on loopback: a real OpenAI-compatible server on a CPU.

For conformance tests and benchmarks against a server no one here wrote: it serves a
GGUF file (the embedded model's, `embedded_gguf_file`) with continuous batching over
`parallel` slots, and answers `/v1/chat/completions`, `/v1/completions` and `/health`.
Talk to it with an `openai:MODEL@URL` spec or `OpenAICompatibleClient`; llama.cpp
serves its one model whatever name is asked for.

    binary = find_llama_server()
    with LlamaServer(binary, embedded_gguf_file(), parallel=8) as server:
        client = openai_client_from_spec("smollm2", server.base_url)

The binary is `$JOURNEY_LLAMA_SERVER`, else the first existing path given to
`find_llama_server`, else `llama-server` on PATH. The server binds 127.0.0.1 on a free
port (it has no API key), runs in its own process group, is killed by the kernel if
journey dies without stopping it (Linux), and its output goes to a temporary log that
an error quotes.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
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

__all__ = ["LLAMA_SERVER_ENV", "LlamaServer", "embedded_gguf_file", "find_llama_server"]

LLAMA_SERVER_ENV = "JOURNEY_LLAMA_SERVER"
"""Path of the `llama-server` binary to use."""

HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0


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
    """One `llama-server` process serving one GGUF file on 127.0.0.1."""

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
        """Describe the server; `start` (or `with`) starts it.

        Args:
            binary: The `llama-server` executable.
            model: The GGUF file to serve.
            parallel: Slots, requests decoded together (`--parallel`).
            context: Total context in tokens over all slots (`-c`); default 2048 per slot.
            threads: CPU threads (`-t`); default all cores.
            extra_args: More server arguments, placed last.
        """
        self.binary = binary
        self.model = model
        self.parallel = parallel
        self.context = context if context is not None else 2048 * parallel
        self.threads = threads if threads is not None else os.cpu_count() or 1
        self.extra_args = extra_args
        self.port = 0
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

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

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once `/health` answers 200.

        Raises:
            ModelUnavailableError: It could not be started, exited, or was not ready in
                `timeout` seconds (it is stopped then); the message quotes its log.
        """
        self.port = free_port(HOST)
        log_fd, log_name = tempfile.mkstemp(prefix="journey-llama-", suffix=".log")
        self.log_path = Path(log_name)
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
                raise ModelUnavailableError(f"cannot start {self.binary}: {error}") from None
        deadline = time.monotonic() + timeout
        while not self._healthy():
            code = self._process.poll()
            if code is not None:
                self._fail(f"exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                self._fail(f"was not ready after {timeout:g} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; the log is removed."""
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

    def _healthy(self) -> bool:
        # No proxy: a $HTTP_PROXY would otherwise get the loopback probe.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{HOST}:{self.port}/health", timeout=2.0) as response:
                return bool(response.status == 200)
        except (OSError, http.client.HTTPException):  # 503 while loading, refused, timeout
            return False

    def _fail(self, what: str) -> NoReturn:
        tail = " | ".join(log_tail(self.log_path, 5)) if self.log_path else ""
        log = self.log_path
        self.log_path = None  # kept for the user to read
        self.kill()
        raise ModelUnavailableError(
            f"llama-server for {self.model.name} {what}; last log lines: {tail or '(empty)'} "
            f"(full log: {log})"
        )
