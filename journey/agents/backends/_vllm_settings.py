"""What a vLLM server is started with: `VLLMServerSettings` and its command line.

The program that starts it is the interpreter of the spec's `python=` option (or of
`$JOURNEY_VLLM_PYTHON`, read by `vllm_server.vllm_client_from_spec`), which runs
`PYTHON -m vllm.entrypoints.openai.api_server --model MODEL ...`, else the `vllm`
executable on PATH, which runs `vllm serve MODEL ...`. The server options become flags
(`tensor_parallel_size=2` becomes `--tensor-parallel-size 2`), followed by the extra
arguments (`$JOURNEY_VLLM_ARGS`), which so win over journey's own flags.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from journey.errors import ConfigError, ModelSpecError

__all__ = [
    "API_SERVER_MODULE",
    "EXTRA_ARGS_ENV",
    "HOST",
    "PYTHON_ENV",
    "VLLMServerSettings",
]

PYTHON_ENV = "JOURNEY_VLLM_PYTHON"
"""Interpreter of the environment where vllm is installed, when a spec gives no `python=`."""

EXTRA_ARGS_ENV = "JOURNEY_VLLM_ARGS"
"""More `vllm serve` arguments for every server journey starts, split with `shlex`."""

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
HOST = "127.0.0.1"  # never reachable from other machines: the server has no API key


@dataclass(frozen=True)
class VLLMServerSettings:
    """What a vLLM server is started with; equal settings share one server.

    Raises:
        ConfigError: A numeric setting is out of range.
    """

    model: str
    """Hugging Face model id or local directory, as `vllm serve` takes it."""
    python: str | None = None
    """Interpreter with vllm installed; None runs the `vllm` executable on PATH."""
    tensor_parallel_size: int | None = None
    """GPUs to shard the model over (`--tensor-parallel-size`); None: vLLM's default (1)."""
    gpu_memory_utilization: float | None = None
    """Fraction of each GPU's memory vLLM may take (`--gpu-memory-utilization`)."""
    max_model_len: int | None = None
    """Context length in tokens (`--max-model-len`); None: the model's own."""
    dtype: str | None = None
    """Weight and activation dtype (`--dtype`), e.g. "bfloat16"; None: vLLM's "auto"."""
    extra_args: tuple[str, ...] = ()
    """Further server arguments, appended after all the others."""

    def __post_init__(self) -> None:
        if self.tensor_parallel_size is not None and self.tensor_parallel_size < 1:
            raise ConfigError(
                f"tensor_parallel_size must be at least 1, got {self.tensor_parallel_size!r}"
            )
        utilization = self.gpu_memory_utilization
        if utilization is not None and not 0.0 < utilization <= 1.0:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization!r}"
            )
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ConfigError(f"max_model_len must be at least 1, got {self.max_model_len!r}")

    def command(self, port: int) -> list[str]:
        """The server's command line.

        Raises:
            ModelSpecError: The interpreter does not exist, or no interpreter is given and
                no `vllm` executable is on PATH.
        """
        return [*self._launcher(), "--host", HOST, "--port", str(port), *self._flags()]

    def sharing_key(self) -> tuple[str, ...]:
        """The command line without the port: servers started alike are one server."""
        return (*self._launcher(), *self._flags())

    def _launcher(self) -> list[str]:
        if self.python is not None:
            interpreter = shutil.which(self.python)
            if interpreter is None:
                raise ModelSpecError(
                    f"python interpreter {self.python!r} for vllm:{self.model} does not exist "
                    "or is not executable"
                )
            return [interpreter, "-m", API_SERVER_MODULE, "--model", self.model]
        executable = shutil.which("vllm")
        if executable is None:
            raise ModelSpecError(
                f"cannot start vllm:{self.model}: give python=/path/to/venv/bin/python in the "
                f"spec, set ${PYTHON_ENV}, or put the vllm executable on PATH"
            )
        return [executable, "serve", self.model]

    def _flags(self) -> list[str]:
        flags: list[str] = []
        for name, value in (
            ("--tensor-parallel-size", self.tensor_parallel_size),
            ("--gpu-memory-utilization", self.gpu_memory_utilization),
            ("--max-model-len", self.max_model_len),
            ("--dtype", self.dtype),
        ):
            if value is not None:
                flags += [name, str(value)]
        return [*flags, *self.extra_args]
