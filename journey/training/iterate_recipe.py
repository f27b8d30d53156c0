"""The recipe of `journey iterate`: a YAML file, checked into typed settings
(`IterateRecipe`, its sections in `iterate_settings`).

    rounds: 2
    dataset: "rg:basic_arithmetic?size=12&seed={round}"   # training problems
    eval_dataset: {source: "rg:basic_arithmetic?size=20&seed=1000", limit: 10}
    policy: embedded
    critic: embedded
    synth: {strategy: debate, concurrency: 8, limits: {max_turns: 6}}
    export: {sets: [shortcut, journey]}
    training:
      max_steps: 2
      arms: {shortcut: [shortcut], journey: [shortcut, journey]}
      dpo: {arms: [journey], pairs: {samples: 4}, beta: 0.1}
      seeds: [1, 2, 3]      # each arm trained once per seed (optional)
      match: rows           # none | rows | tokens: the arms' data equalised
    eval: {max_new_tokens: 256}
    next_policy: journey
    next_critic: none

Every key has a default but `dataset` and `eval_dataset`. With `exclude_held_out: true`,
a training problem whose text is also a held-out one is left out (a small task space
draws the same problem under two seeds). A dataset is any form
`--dataset` takes (a JSONL file, `hf:NAME`, a Hub id, `rg:TASK?size=&seed=`), or a
mapping with `source` and `split`, `offset`, `limit`, `problem_field`, `answer_field`;
`{round}` in the training source is the round's number, so each round can draw new
problems. Training settings are `journey train sft`'s options and defaults (`lr`,
`epochs`, `max_steps`, `batch_size`, `grad_accum`, `max_length`, `seed`, `lora`,
`lora_rank`); an arm lists its phases, each a set (`shortcut`, `journey`) or a mapping
with `set` and that phase's own settings, trained one after the other as
`journey train sft --then` does. DPO settings are `journey train dpo`'s, its pairs
`journey pairs`'. `seeds` trains every arm once per seed, from the same start, and
`match` gives the arms equal rows or tokens (`iterate_arms`, `iterate_match`); the
first arm is the one the others are compared with, so the order of `arms` counts.

`load_recipe` reports every mistake at once, one line each, naming the file and the
key: `recipe.yaml: training.lr: Input should be a valid number (got 'fast')`.
Nothing here imports torch.
"""

from __future__ import annotations

import string
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from journey.errors import ConfigError
from journey.training.iterate_settings import (
    NONE,
    DatasetChoice,
    EvalSettings,
    ExportSettings,
    Settings,
    SynthSettings,
    TrainingSettings,
    checked_spec,
)

__all__ = ["IterateRecipe", "load_recipe", "recipe_errors"]


class IterateRecipe(Settings):
    """Rounds of synthesis, export, training and evaluation, each from the last one's model."""

    rounds: int = Field(default=1, ge=1)
    dataset: DatasetChoice
    eval_dataset: DatasetChoice
    policy: str = "embedded"
    critic: str = "embedded"
    synth: SynthSettings = SynthSettings()
    export: ExportSettings = ExportSettings()
    training: TrainingSettings = TrainingSettings()
    eval: EvalSettings = EvalSettings()
    next_policy: str = Field(default="journey", description="An arm, or none.")
    next_critic: str = Field(default=NONE, description="An arm, or none.")
    exclude_held_out: bool = Field(
        default=False,
        description="Leave out of synthesis (and DPO pairs) every training problem whose "
        "text is also a held-out problem.",
    )

    @field_validator("policy", "critic")
    @classmethod
    def _spec(cls, value: str) -> str:
        return checked_spec(value)

    @field_validator("dataset")
    @classmethod
    def _round_field(cls, value: DatasetChoice) -> DatasetChoice:
        names = {name for _, name, _, _ in string.Formatter().parse(value.source) if name}
        if names - {"round"}:
            raise ValueError(f"only {{round}} may stand in the source, got {value.source!r}")
        return value

    @field_validator("eval_dataset")
    @classmethod
    def _fixed(cls, value: DatasetChoice) -> DatasetChoice:
        if "{round}" in value.source:
            raise ValueError("the held-out problems are the same every round: no {round}")
        return value

    @model_validator(mode="after")
    def _names_agree(self) -> IterateRecipe:
        arms = self.training.arms
        problems = []
        for name, phases in arms.items():
            missing = sorted({p.set for p in phases} - set(self.export.sets))
            if missing:
                problems.append(f"arm {name!r} trains on {missing} that export.sets leaves out")
        if self.training.dpo is not None:
            unknown = [a for a in self.training.dpo.arms if a not in arms]
            if unknown:
                problems.append(f"training.dpo.arms names no arm: {unknown}")
        for key in ("next_policy", "next_critic"):
            value = getattr(self, key)
            if value != NONE and value not in arms:
                known = ", ".join([*arms, NONE])
                problems.append(f"{key} {value!r} is not an arm ({known})")
        if problems:
            raise ValueError("\n".join(problems))  # one line each in `recipe_errors`
        return self

    def record(self) -> dict[str, Any]:
        """The recipe as `iterate.json` keeps it."""
        return self.model_dump(mode="json")


def recipe_errors(error: ValidationError, source: str) -> list[str]:
    """One line per mistake: `SOURCE: key.path: what is wrong (got VALUE)`."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "recipe"
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item["input"]
        if item["type"] == "extra_forbidden":
            known = _known_keys(item["loc"][:-1])
            message = f"unknown key (known: {', '.join(known)})" if known else "unknown key"
        elif item["type"] != "missing" and not isinstance(value, Mapping):
            message += "" if repr(value) in message else f" (got {value!r})"
        lines += [f"{source}: {where}: {line}" for line in message.splitlines()]
    return lines


def _known_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys of the settings at `loc` (a path into the recipe), or [] if not a mapping
    of settings."""
    current: Any = IterateRecipe
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = current.model_fields.get(str(part))
            if found is None:
                return []
            current = found.annotation
        else:  # a dict's key or a tuple's index: go to its values' type
            current = typing.get_args(current)[-1 if typing.get_origin(current) is dict else 0]
        options = [a for a in typing.get_args(current) if a is not type(None)]
        if typing.get_origin(current) in (Union, UnionType) and len(options) == 1:
            current = options[0]  # `X | None`
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def load_recipe(path: Path) -> IterateRecipe:
    """Read and check a recipe file.

    Raises:
        ConfigError: the file is missing or not a YAML mapping, or has mistakes: the
            message lists each, one line apiece.
    """
    if not path.is_file():
        raise ConfigError(f"recipe {str(path)!r} does not exist")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: must be a mapping of settings (see docs/training.md)")
    try:
        return IterateRecipe.model_validate(document)
    except ValidationError as error:
        lines = recipe_errors(error, str(path))
        if len(lines) == 1:
            raise ConfigError(lines[0]) from None
        raise ConfigError(f"{len(lines)} mistakes in the recipe:\n" + "\n".join(lines)) from None
