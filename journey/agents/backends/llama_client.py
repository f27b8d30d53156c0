"""The client of a `llama:GGUF` spec: llama.cpp's `llama-server`, which journey starts,
shares and stops itself.

Building the client checks what a start needs, so that a wrong spec is one error line
before any work: the binary (the spec's `binary=`, else `$JOURNEY_LLAMA_SERVER`, else
`llama-server` on PATH) and the GGUF file (a path, or `embedded`: the embedded model's,
fetched as `journey model pull` does). The server is only described then, on a port
chosen free; the first request, or `load()`, launches it and waits until `/health`
answers, and `close()` gives up the client's share of it.

Clients whose server settings are equal share one server (a critic with `logprobs=true`
and a policy with `temperature=0.7` on one GGUF load it once, and their requests share
its slots). The last one to close stops it (SIGTERM, SIGKILL after a grace period);
so does interpreter exit, and on Linux the kernel when journey dies without cleaning
up. A server that dies under a request fails it at once, naming its exit and its log.
More server arguments go in `$JOURNEY_LLAMA_ARGS`, split like a shell line and placed
last (e.g. `-ngl 99` to offload layers to a GPU with a CUDA build).
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from journey.agents.backends.launched_server_client import LaunchedServerClient
from journey.agents.backends.llama_backend import EMBEDDED_GGUF
from journey.agents.backends.llama_server import (
    EXTRA_ARGS_ENV,
    LLAMA_SERVER_ENV,
    LlamaServer,
    embedded_gguf_file,
    find_llama_server,
)
from journey.errors import ConfigError, ModelSpecError

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_START_TIMEOUT",
    "EMBEDDED_GGUF",
    "LlamaClient",
    "LlamaSettings",
    "llama_client_from_spec",
    "llama_server_binary",
]


DEFAULT_START_TIMEOUT = 300.0
"""Seconds a server may take to load its GGUF (a large file on a slow disk takes minutes)."""
DEFAULT_REQUEST_TIMEOUT = 600.0
"""Seconds one request may take: a CPU decodes a long reply in slots shared with others
far slower than a GPU server, and a timed-out request is retried from the start."""


@dataclass(frozen=True)
class LlamaSettings:
    """What a server is started with; servers with equal settings are one server."""

    binary: Path
    model: Path
    parallel: int = 8
    context: int | None = None
    threads: int | None = None
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value, least in (
            ("parallel", self.parallel, 1),
            ("ctx_size", self.context, 0),
            ("threads", self.threads, 1),
        ):
            if value is not None and value < least:
                raise ConfigError(f"{name} must be at least {least}, got {value!r}")


class _Share:
    """A server and how many clients use it; the last release stops it. Made under
    `_shares_lock`."""

    server: LlamaServer

    def __init__(self, settings: LlamaSettings) -> None:
        self.settings = settings
        self.server = LlamaServer(
            settings.binary,
            settings.model,
            parallel=settings.parallel,
            context=settings.context,
            threads=settings.threads,
            extra_args=settings.extra_args,
        )
        self.users = 0

    def release(self) -> None:
        with _shares_lock:
            self.users -= 1
            if self.users > 0:
                return
            if _shares.get(self.settings) is self:
                del _shares[self.settings]
        self.server.stop()


_shares: dict[LlamaSettings, _Share] = {}
_shares_lock = threading.Lock()


def _acquire(settings: LlamaSettings) -> _Share:
    with _shares_lock:
        share = _shares.get(settings)
        if share is None:
            share = _shares[settings] = _Share(settings)
        share.users += 1
        return share


class LlamaClient(LaunchedServerClient):
    """An OpenAI-compatible client of a `llama-server` it holds a share of.

    Requests wait until the server is ready (or `load()` does it up front); `close()`
    gives up the share, and is safe to call twice.
    """

    def __init__(
        self,
        settings: LlamaSettings,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        **client_options: Any,
    ) -> None:
        """Take a share of the server for `settings` (described now, launched later).

        Args:
            settings: The server's binary, GGUF file and server options.
            start_timeout: Seconds from the launch after which waiting for it fails.
            timeout: Seconds one request may take.
            **client_options: `OpenAICompatibleClient` options (max_retries, logprobs,
                temperature, top_p, seed...).

        Raises:
            ConfigError: An option is out of range.
        """
        share = _acquire(settings)
        super().__init__(
            share.server,
            share.release,
            model=settings.model.stem,  # llama.cpp answers to any name; this one says which
            base_url=share.server.base_url,
            start_timeout=start_timeout,
            timeout=timeout,
            reasoning=False,  # whatever the file is called, it is no OpenAI o-series
            **client_options,
        )
        self.server: LlamaServer = share.server


def llama_server_binary(given: str | None, spec: str) -> Path:
    """The `llama-server` a spec runs: `given` (its `binary=`: a path, or a name on PATH),
    else `$JOURNEY_LLAMA_SERVER`, else `llama-server` on PATH.

    Raises:
        ModelSpecError: None of them is there, saying which were looked for.
    """
    if given:
        found = shutil.which(str(Path(given).expanduser()))
        if found is None:
            raise ModelSpecError(
                f"llama-server binary {given!r} (binary= in {spec!r}) does not exist "
                "or is not executable"
            )
        return Path(found)
    binary = find_llama_server()
    if binary is not None:
        return binary
    explicit = os.environ.get(LLAMA_SERVER_ENV)
    if explicit:
        raise ModelSpecError(f"${LLAMA_SERVER_ENV}={explicit!r} for {spec!r} is not a file")
    raise ModelSpecError(
        f"cannot start {spec!r}: no llama-server on PATH; give binary=/path/to/llama-server "
        f"in the spec or set ${LLAMA_SERVER_ENV}"
    )


def gguf_path(target: str) -> Path:
    """The GGUF file a `llama:` target names (`embedded` is fetched if need be).

    Raises:
        ModelSpecError: The path is not a file.
        ModelUnavailableError: The embedded model's file is not at hand and cannot be fetched.
    """
    if target == EMBEDDED_GGUF:
        return embedded_gguf_file()
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelSpecError(f"GGUF file {target!r} for llama:{target} does not exist")
    return path


def llama_client_from_spec(
    target: str,
    *,
    binary: str | None = None,
    parallel: int = 8,
    ctx_size: int | None = None,
    threads: int | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    **client_options: Any,
) -> LlamaClient:
    """The client of `llama:TARGET`; its server is shared, and launched at its first use.

    Args:
        target: A GGUF file, or `embedded`.
        binary: The `llama-server` to run (see `llama_server_binary`).
        parallel: Slots, requests decoded together.
        ctx_size: Total context in tokens over all slots; default 2048 per slot.
        threads: CPU threads; default all cores.
        start_timeout: Seconds the server may take to be ready.
        **client_options: Client options: temperature, top_p, seed, timeout,
            max_retries, logprobs.

    Raises:
        ConfigError: An option is out of range.
        ModelSpecError: No binary, or no GGUF file at that path.
        ModelUnavailableError: The embedded model's GGUF cannot be fetched.

    Example:
        >>> llama_client_from_spec("embedded", parallel=4, temperature=0.7)
    """
    spec = f"llama:{target}"
    program = llama_server_binary(binary, spec)  # before a GGUF is fetched for nothing
    settings = LlamaSettings(
        program.resolve(),
        gguf_path(target).resolve(),
        parallel=parallel,
        context=ctx_size,
        threads=threads,
        extra_args=tuple(shlex.split(os.environ.get(EXTRA_ARGS_ENV, ""))),
    )
    return LlamaClient(settings, start_timeout=start_timeout, **client_options)
