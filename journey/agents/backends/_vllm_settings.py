"""What a vLLM server is started with: `VLLMServerSettings`, its command line and GPUs.

The program that starts it is the interpreter of the spec's `python=` option (or of
`$JOURNEY_VLLM_PYTHON`, read by `vllm_replicas.vllm_client_from_spec`), which runs
`PYTHON -m vllm.entrypoints.openai.api_server --model MODEL ...`, else the `vllm`
executable on PATH, which runs `vllm serve MODEL ...`. The server options become flags
(`tensor_parallel_size=2` becomes `--tensor-parallel-size 2`), followed by the extra
arguments (`$JOURNEY_VLLM_ARGS`), which so win over journey's own flags.

The GPUs a server sees are an environment variable, not a flag: `replica_devices` gives
each of a spec's `data_parallel` replicas its own `$CUDA_VISIBLE_DEVICES`.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass

from journey.errors import ConfigError, ModelSpecError

__all__ = [
    "API_SERVER_MODULE",
    "CUDA_DEVICES_ENV",
    "EXTRA_ARGS_ENV",
    "HOST",
    "PYTHON_ENV",
    "VLLMServerSettings",
    "replica_devices",
]

logger = logging.getLogger(__name__)

PYTHON_ENV = "JOURNEY_VLLM_PYTHON"
"""Interpreter of the environment where vllm is installed, when a spec gives no `python=`."""

EXTRA_ARGS_ENV = "JOURNEY_VLLM_ARGS"
"""More `vllm serve` arguments for every server journey starts, split with `shlex`."""

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
HOST = "127.0.0.1"  # never reachable from other machines: the server has no API key

CUDA_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"
_GPU_ID = re.compile(r"\d+|(?:GPU|MIG)-[\w/-]+")  # an index, or a UUID as nvidia-smi -L shows it


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
    cuda_visible_devices: str | None = None
    """The GPUs the server sees, as `$CUDA_VISIBLE_DEVICES` (e.g. "2,3"); None: the ones
    journey sees."""

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
        """The command line without the port, and its GPUs: servers started alike are one
        server."""
        devices = self.cuda_visible_devices
        gpus = () if devices is None else (f"{CUDA_DEVICES_ENV}={devices}",)
        return (*gpus, *self._launcher(), *self._flags())

    def environment(self) -> dict[str, str]:
        """What the server's environment has besides journey's own."""
        added = {"PYTHONUNBUFFERED": "1"}  # its log is current when an error quotes it
        if self.cuda_visible_devices is not None:
            added[CUDA_DEVICES_ENV] = self.cuda_visible_devices
        return added

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


def replica_devices(
    data_parallel: int,
    tensor_parallel_size: int | None,
    gpus: str | None,
    inherited: str | None,
) -> list[str | None]:
    """The `$CUDA_VISIBLE_DEVICES` of each of a model's `data_parallel` servers, in order.

    Replica i takes the i-th run of `tensor_parallel_size` GPUs from `gpus`, else from
    journey's own `$CUDA_VISIBLE_DEVICES` (`inherited`), else from 0, 1, 2... A single
    server without `gpus` gets None: it sees what journey sees, as it always did.

    Args:
        data_parallel: Replicas of the server (at least 1).
        tensor_parallel_size: GPUs per replica; None is 1.
        gpus: GPU numbers or UUIDs separated by `+` or commas, e.g. "0+1+2+3"; used as
            given (they replace journey's `$CUDA_VISIBLE_DEVICES`, not index into it).
        inherited: Journey's `$CUDA_VISIBLE_DEVICES`, None when it is not set.

    Raises:
        ConfigError: data_parallel below 1, `gpus` malformed or naming a GPU twice, or
            fewer GPUs than data_parallel times tensor_parallel_size.
    """
    if data_parallel < 1:
        raise ConfigError(f"data_parallel must be at least 1, got {data_parallel!r}")
    if gpus is None and data_parallel == 1:
        return [None]
    per_replica = tensor_parallel_size or 1
    needed = data_parallel * per_replica
    if gpus is not None:
        pool, source = _gpu_list(gpus), f"gpus={gpus!r}"
    elif inherited is not None:
        pool = [gpu.strip() for gpu in inherited.split(",") if gpu.strip()]
        source = f"${CUDA_DEVICES_ENV}={inherited!r}"
    else:
        pool, source = [str(index) for index in range(needed)], ""
    what = f"data_parallel={data_parallel}"
    if per_replica > 1:
        what += f" times tensor_parallel_size={per_replica}"
    if needed > len(pool):
        raise ConfigError(f"{what} needs {needed} GPUs, but {source} names {len(pool)}")
    if gpus is not None and len(pool) > needed:
        logger.warning("%s takes %d of the GPUs in %s; the rest stay idle", what, needed, source)
    return [",".join(pool[i * per_replica : (i + 1) * per_replica]) for i in range(data_parallel)]


def _gpu_list(gpus: str) -> list[str]:
    found = [gpu.strip() for gpu in re.split(r"[+,]", gpus)]
    for gpu in found:
        if not _GPU_ID.fullmatch(gpu):
            raise ConfigError(
                f"gpus={gpus!r}: {gpu!r} is not a GPU number or UUID; "
                "separate them with + or commas, e.g. gpus=0+1"
            )
    twice = sorted({gpu for gpu in found if found.count(gpu) > 1})
    if twice:
        raise ConfigError(f"gpus={gpus!r} names GPU {twice[0]} twice")
    return found
