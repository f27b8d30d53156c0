"""Training recipe files: `journey train sft|dpo --config FILE.yaml`.

A recipe is a YAML mapping whose keys are the command's option names (`epochs`,
`batch_size`, or dashed as on the command line, `batch-size`). A training-config field
that an option feeds is accepted as that option (`learning_rate` for `lr`,
`num_train_epochs` for `epochs`). The file's values are defaults: a flag given on the
command line wins, in every phase.

`phases:` lists the data of a multi-phase recipe, each entry a file name or a mapping
with `data` and per-phase settings. Phase 1 starts from `model`; each later phase
starts from the model the phase before it saved. Every phase but the last writes to
`OUT/phaseN`, the last to `OUT`, so two phases are exactly `--data A --then B`.

Paths in a recipe are relative to the working directory, like the same flags.
Nothing here imports torch or TRL: a bad file fails before any model is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from journey.errors import ConfigError

__all__ = [
    "OPTION_FIELDS",
    "PhaseSpec",
    "TrainFile",
    "TrainPhase",
    "config_settings",
    "load_train_file",
    "plan_phases",
]

OPTION_FIELDS: dict[str, str] = {
    "model": "model_spec",
    "data": "data_file",
    "out": "output_dir",
    "lora": "lora",
    "lora_rank": "lora_rank",
    "beta": "beta",
    "max_steps": "max_steps",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_length": "max_length",
    "seed": "seed",
}
"""Command-line option of `journey train` → the training-config field it sets."""

_FIELD_OPTIONS = {field: option for option, field in OPTION_FIELDS.items() if field != option}
_CHAIN_OPTIONS = frozenset({"model", "out", "data", "then"})
"""Options that say where phases read and write, set once for the whole recipe."""

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class PhaseSpec:
    """One phase as a recipe or the command line states it."""

    data: Path
    settings: dict[str, Any]
    """Option values for this phase only (epochs, lr...), over the recipe-wide ones."""


@dataclass(frozen=True)
class TrainFile:
    """A parsed recipe file: option values, and phases if it lists any."""

    path: Path
    settings: dict[str, Any]
    """Recipe-wide option values, by option name (`lr`, not `learning_rate`)."""
    phases: tuple[PhaseSpec, ...] | None


@dataclass(frozen=True)
class TrainPhase:
    """One training run of a recipe: where it starts, what it reads, where it saves."""

    model: str
    data: Path
    out: Path
    settings: dict[str, Any]


def _coerce(value: Any, expected: type, where: str) -> Any:
    if expected is bool and isinstance(value, bool):
        return value
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is float and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        # PyYAML follows YAML 1.1, which reads `1e-5` (no dot) as a string.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if expected is str and isinstance(value, str):
        return value
    if expected is Path and isinstance(value, str) and value:
        return Path(value)
    wanted = _TYPE_NAMES.get(expected, "a file name")
    raise ConfigError(f"{where} must be {wanted}, got {value!r}")


def _settings(
    raw: Mapping[Any, Any], allowed: Mapping[str, type], where: str, source: Path
) -> dict[str, Any]:
    """Normalise the keys of one mapping and check its values against `allowed`."""
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        name = _FIELD_OPTIONS.get(name, name)
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{source}: unknown key {key!r}{where} (known: {known})")
        if name in settings:
            raise ConfigError(f"{source}: {name!r} is set twice{where} (as {key!r} too)")
        settings[name] = _coerce(value, allowed[name], f"{source}: {key!r}{where}")
    return settings


def _phase(entry: Any, number: int, allowed: Mapping[str, type], source: Path) -> PhaseSpec:
    where = f" in phase {number}"
    if isinstance(entry, str):  # shorthand: just the data file
        entry = {"data": entry}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{source}: phase {number} must be a file name or a mapping")
    settings = _settings(entry, allowed, where, source)
    data = settings.pop("data", None)
    if data is None:
        raise ConfigError(f"{source}: phase {number} needs a 'data' file")
    return PhaseSpec(data=data, settings=settings)


def load_train_file(path: Path, option_types: Mapping[str, type]) -> TrainFile:
    """Read and check a recipe file.

    Args:
        path: The YAML file.
        option_types: The command's options and their Python types (bool, int, float,
            str, Path); only these keys (and `phases`) are accepted.

    Returns:
        The recipe's option values by option name, and its phases if it lists any.

    Raises:
        ConfigError: the file is missing or not YAML, or a key is unknown, repeated
            or has a value of the wrong type (the message names the file and key).
    """
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path}: not valid YAML{line}: {problem}") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: must be a mapping of option names to values")
    raw = dict(document)
    raw_phases = raw.pop("phases", None)
    settings = _settings(raw, option_types, "", path)
    if raw_phases is None:
        return TrainFile(path=path, settings=settings, phases=None)
    if not isinstance(raw_phases, list) or not raw_phases:
        raise ConfigError(f"{path}: 'phases' must be a non-empty list")
    clashing = sorted(settings.keys() & {"data", "then"})
    if clashing:
        named = " and ".join(repr(name) for name in clashing)
        raise ConfigError(f"{path}: 'phases' cannot be combined with {named}")
    per_phase = {k: v for k, v in option_types.items() if k not in _CHAIN_OPTIONS}
    per_phase["data"] = Path
    phases = tuple(
        _phase(entry, number, per_phase, path) for number, entry in enumerate(raw_phases, 1)
    )
    return TrainFile(path=path, settings=settings, phases=phases)


def plan_phases(model: str, out: Path, phases: Sequence[PhaseSpec]) -> list[TrainPhase]:
    """Chain phases: each starts from the model the one before saved.

    Every phase but the last saves to `out/phaseN`, the last to `out`, so the trained
    model is always at `out` and a single phase is a plain run.
    """
    plan: list[TrainPhase] = []
    start = model
    for number, spec in enumerate(phases, 1):
        target = out if number == len(phases) else out / f"phase{number}"
        plan.append(TrainPhase(model=start, data=spec.data, out=target, settings=spec.settings))
        start = f"hf:{target}"
    return plan


def config_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of a training config from option values (model, data, out apart).

    `lora_alpha` follows the rank (alpha = 2r, which keeps the update scale steady as
    the rank changes); options the command lacks (`beta` for SFT) are left out.
    """
    settings = {
        OPTION_FIELDS[name]: value
        for name, value in values.items()
        if name in OPTION_FIELDS and name not in _CHAIN_OPTIONS
    }
    if "lora_rank" in settings:
        settings["lora_alpha"] = 2 * settings["lora_rank"]
    return settings
