"""What the servers journey starts (vLLM, llama.cpp's llama-server) share: a free port on
loopback, a process group to signal, a log's last lines, and a child that dies with us."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port(host: str) -> int:
    """A port free now and never handed out before in this process: a server described
    now may bind it minutes later, on its first request, so no other server of this
    process (vLLM or llama.cpp) may be given it meanwhile. Another process may still
    take it: a clash fails that server's start, naming its log."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def log_tail(path: Path, lines: int) -> list[str]:
    """The last non-blank lines of a server's log; [] when it cannot be read."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16384))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()][-lines:]


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal a server's whole process group; one already gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def die_with_parent_hook() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel SIGTERM the child when journey dies without
    cleaning up (SIGKILL, a crash), which atexit cannot cover; None off Linux.

    Linux ties this to the *thread* that started the server, so start servers from a
    long-lived thread (the CLI's main thread), not a short-lived worker.
    """
    return _die_with_parent if _LIBC is not None else None


def _die_with_parent() -> None:
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
