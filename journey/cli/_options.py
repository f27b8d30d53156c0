"""Typer options that take their help and default from a config dataclass's field.

A config says what each field means (`field(metadata={"help": ...})`) and its default;
an option that sets exactly one field takes both from there instead of retyping them,
as TRL builds its command line from its configs:

    LoraRankOption = Annotated[int, field_option(JourneyTrainingFields, "lora_rank")]

    def sft(lora_rank: LoraRankOption = field_default(JourneyTrainingFields, "lora_rank")):

Two calls, because typer reads a default from the signature, never from the option.
Validation stays in the config's `__post_init__`. The config's module is imported with
the CLI, for `journey --help` too, so it must not import torch or the sessions.

Below them, the options `journey synth`, `eval` and `pairs` share: the response cache,
prices and budgets of their requests (`journey.runs.request_accounts.SpendSettings`),
and the Ray cluster they may run on (`journey.runs.ray_units.RayOptions`). Those
configs' modules import the sessions, so these repeat their fields' help and defaults
by hand (as the options in `_app.py` do; tests/test_cli_options.py and
tests/test_spend_options.py keep them equal), and `spend_settings` and `ray_options`
build the configs only when a command runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from journey.runs.ray_units import RayOptions
    from journey.runs.request_accounts import SpendSettings


def config_field(config: type[Any], name: str) -> dataclasses.Field[Any]:
    """The field `name` of the dataclass `config`.

    Raises:
        AttributeError: `config` has no such field (a mistake in the CLI's code).
    """
    for candidate in dataclasses.fields(config):
        if candidate.name == name:
            return candidate
    raise AttributeError(f"{config.__name__} has no field {name!r}")


def field_help(config: type[Any], name: str) -> str:
    """The help string of a config field, as its metadata states it.

    Raises:
        TypeError: the field has no help string.
    """
    text = config_field(config, name).metadata.get("help")
    if not isinstance(text, str) or not text:
        raise TypeError(f"{config.__name__}.{name} has no help string")
    return text


def field_default(config: type[Any], name: str) -> Any:
    """The default of a config field (a default factory is called).

    Raises:
        TypeError: the field has no default.
    """
    found = config_field(config, name)
    if found.default is not dataclasses.MISSING:
        return found.default
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    raise TypeError(f"{config.__name__}.{name} has no default")


def field_option(config: type[Any], name: str, *param_decls: str, **settings: Any) -> Any:
    """A `typer.Option` whose help is the field's, for use inside `Annotated[...]`.

    Args:
        config: The config dataclass.
        name: The field the option sets.
        *param_decls: Flag names, when not the parameter's own (`"--model"`).
        **settings: Anything else `typer.Option` takes (not `help`).
    """
    # Help is rich markup on the command line and plain text in a config.
    return typer.Option(*param_decls, help=escape(field_help(config, name)), **settings)


# -- the requests' cache, prices and budgets (synth, eval, pairs) -----------------------------

CacheOption = Annotated[
    Path | None,
    typer.Option(
        help="Response cache directory (default: the one kept with --out: cache/ in a run or "
        "evaluation directory, NAME.cache/ beside a pairs file NAME.jsonl). Share one across "
        "runs (e.g. ~/.cache/journey/responses) to pay for no request twice."
    ),
]
CacheModeOption = Annotated[
    str,
    typer.Option(
        help="readwrite: answer from the cache, store new replies; read: answer from it, "
        "store nothing; write: always ask, store; off: no cache."
    ),
]
CACHE_MODE_DEFAULT = "readwrite"
BudgetTokensOption = Annotated[
    int | None,
    typer.Option(
        help="Stop the run once this invocation's model requests (with --ray, every "
        "worker's) have used this many tokens, prompt + generated (cache hits are free); "
        "resumable."
    ),
]
BudgetUsdOption = Annotated[
    float | None,
    typer.Option(
        help="Stop the run once this invocation's model requests (with --ray, every "
        "worker's) cost this many US dollars (every role needs a price); resumable."
    ),
]
PricesOption = Annotated[
    Path | None,
    typer.Option(
        help="Prices of models by name (a YAML or JSON file: model -> {in, out}, USD "
        "per million tokens), over journey's dated table; a spec's price_in/price_out win."
    ),
]


# --- on a Ray cluster: synth, eval, pairs ---------------------------------------------------

RayOption = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run on a Ray cluster (the ray extra): local (start one here), auto (the one "
        "'ray start' made) or ray://HOST:10001. Units of problems run on worker actors, each "
        "into a folder of its own beside the output (on storage every node sees), merged "
        "into the output at the end.",
    ),
]
_WITH_RAY = "With --ray: "  # before each field's help: the options below do nothing without it
RayWorkersOption = Annotated[
    int,
    typer.Option(help=_WITH_RAY + "Worker actors; each loads its models once, not once per unit."),
]
RAY_WORKERS_DEFAULT = 2
RayUnitsOption = Annotated[
    int | None,
    typer.Option(
        help=_WITH_RAY + "Units the problems are cut into (default 4 per worker, at most one "
        "per problem)."
    ),
]
RayWorkerCpusOption = Annotated[
    float, typer.Option(help=_WITH_RAY + "CPUs Ray reserves for each worker.")
]
RAY_WORKER_CPUS_DEFAULT = 1.0
RayWorkerGpusOption = Annotated[
    float,
    typer.Option(
        help=_WITH_RAY + "GPUs Ray reserves for each worker: a worker that serves a model on "
        "a GPU (vllm:, hf: on cuda) needs one; fractions share a GPU."
    ),
]
RAY_WORKER_GPUS_DEFAULT = 0.0


def spend_settings(
    *,
    cache: Path | None,
    cache_mode: str,
    prices: Path | None,
    budget_tokens: int | None,
    budget_usd: float | None,
) -> SpendSettings:
    """The settings the options above give (imported here: the command is running).

    Raises:
        ConfigError: an unknown cache mode, an unreadable prices file, a budget not above 0.
    """
    from journey.agents.backends.cached_client import CacheMode
    from journey.runs.prices import load_prices
    from journey.runs.request_accounts import SpendSettings
    from journey.runs.response_cache import CacheSettings
    from journey.runs.spend import RunBudget

    return SpendSettings(
        cache=CacheSettings(mode=CacheMode.parse(cache_mode), directory=cache),
        prices=load_prices(prices) if prices is not None else {},
        budget=RunBudget(tokens=budget_tokens, usd=budget_usd),
    )


def ray_options(
    *,
    ray: str | None,
    ray_workers: int,
    ray_units: int | None,
    ray_worker_cpus: float,
    ray_worker_gpus: float,
) -> RayOptions | None:
    """The cluster the options above name, or None without `--ray` (the job runs here).

    Raises:
        ConfigError: no worker, no unit, or a worker reserving no CPU or fewer than 0 GPUs.
    """
    if ray is None:
        return None
    from journey.runs.ray_units import RayOptions

    return RayOptions(
        address=ray,
        workers=ray_workers,
        units=ray_units,
        worker_cpus=ray_worker_cpus,
        worker_gpus=ray_worker_gpus,
    )
