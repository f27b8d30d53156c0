"""`EngineConfig`: what a `ModelWorker` runs its model with, besides the model itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from journey.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["AUTO_DTYPE", "EngineConfig"]

AUTO_DTYPE = "float32"
"""What dtype="auto" means. Measured with SmolLM2-135M on 2 cores.

Without native bf16 (AVX2), bfloat16 was faster for one sequence (about 21 vs 15
tokens/s) but half as fast for a batch of 8 (about 35 vs 55-74 tokens/s), and batches
are the common case here. On an Intel Xeon with AMX, bfloat16 was faster at every size
(an 8-row decode step 50 ms against 82-92, a debate synthesis 94-98 tokens/s against
57-60) and cost little in quality (mean loss on 60 MATH500 solutions 1.5534 against
1.5522 in float32), but its rounding makes a greedy reply depend on what shared its
batch and on whether its prompt came from the prefix cache: four of the tests that
guard that guarantee fail in bfloat16. So "auto" keeps float32 everywhere, and
`dtype=bfloat16` is the faster choice on AMX for a caller who can give it up."""

_DTYPES = {  # names torch gives these dtypes, looked up only when a model loads
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


@dataclass(frozen=True)
class EngineConfig:
    """How a `ModelWorker` loads, batches and samples; the defaults are the embedded
    backend's, and the one home of each setting: the local backends' spec options
    (`embedded?prefix_cache_mb=0`) are these fields, their help shows these defaults.

    `continuous_batching`, `prefill_in_step` and `packed_weights` choose among decode
    paths that give the same replies at different speeds; they are for the benchmarks
    that compare those paths (`python -m bench`, docs/benchmarks.md) and for tests, not
    model spec options: a user has no reason to turn one off.
    """

    dtype: str = field(
        default="auto",
        metadata={"help": "auto (float32, see AUTO_DTYPE), float32, bfloat16 or float16."},
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seeds the worker's random stream, from which each sampled request "
            "without a seed of its own draws one."
        },
    )
    max_batch_size: int = field(default=8, metadata={"help": "Most requests decoded together."})
    num_threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads (process-wide); None: every core available."},
    )
    prefix_cache_mb: int = field(
        default=1024,
        metadata={
            "help": "MiB for the keys and values of recent prompts, so that a prompt "
            "extending one (every turn of a session does) is encoded only past it; 0 "
            "turns the cache off."
        },
    )
    continuous_batching: bool = field(
        default=True,
        metadata={
            "help": "Benchmarks only. A request leaves the running batch the step it "
            "ends and queued ones join between steps (models whose attention cache is "
            "one growing key/value pair per layer); False runs each batch as one "
            "`generate` call."
        },
    )
    prefill_in_step: bool = field(
        default=True,
        metadata={
            "help": "Benchmarks only. With continuous batching, a joining prompt is fed "
            "in the batch's next step beside the other rows' tokens (Llama-family "
            "models), not in a pass of its own."
        },
    )
    packed_weights: bool = field(
        default=True,
        metadata={
            "help": "Benchmarks only. A float32 Llama-family model's linear layers run "
            "on oneDNN over weights packed once at load (faster, for more memory)."
        },
    )

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in _DTYPES:
            raise ConfigError(
                f"dtype must be auto or one of {', '.join(_DTYPES)}, got {self.dtype!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {self.num_threads!r}")
        if self.prefix_cache_mb < 0:
            raise ConfigError(f"prefix_cache_mb must be >= 0, got {self.prefix_cache_mb!r}")

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> EngineConfig:
        """The config with `settings` (field name to value) over the defaults.

        Raises:
            ConfigError: A setting names no field, or is out of range.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ConfigError(
                f"no engine setting {', '.join(map(repr, unknown))}; "
                f"EngineConfig has {', '.join(names)}"
            )
        return cls(**settings)

    @property
    def prefix_cache_bytes(self) -> int:
        """`prefix_cache_mb` in bytes."""
        return self.prefix_cache_mb << 20

    @property
    def dtype_name(self) -> str:
        """The name of the dtype the model loads in ("auto" resolved), e.g. "float32"."""
        return _DTYPES[AUTO_DTYPE if self.dtype == "auto" else self.dtype]

    @property
    def torch_dtype(self) -> torch.dtype:
        """The dtype the model loads in ("auto" resolved); imports torch."""
        import torch

        dtype: torch.dtype = getattr(torch, self.dtype_name)
        return dtype
