"""Prompt templates, loaded from the package's `prompts/*.yaml` data files."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from journey.errors import ConfigError


@dataclass(frozen=True)
class PromptSet:
    """The templates of one agent, keyed by name; render with `format`."""

    name: str
    templates: dict[str, str]
    example: tuple[tuple[str, str], ...] = ()
    """A worked dialogue shown before the task, as (role, text) turns: small models
    follow an example far better than an instruction."""

    def format(self, key: str, **fields: Any) -> str:
        try:
            template = self.templates[key]
        except KeyError:
            raise ConfigError(f"prompt set {self.name!r} has no template {key!r}") from None
        return template.format(**fields)


@cache
def load_prompts(name: str) -> PromptSet:
    """Load `journey/agents/prompts/<name>.yaml`."""
    text = resources.files("journey.agents").joinpath("prompts", f"{name}.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"prompt file {name}.yaml must be a mapping")
    example = data.pop("example", [])
    turns = [(role, turn) for entry in example for role, turn in entry.items()]
    if not all(isinstance(v, str) for v in data.values()) or not all(
        role in ("user", "assistant") and isinstance(turn, str) for role, turn in turns
    ):
        raise ConfigError(
            f"prompt file {name}.yaml must map names to strings, and its example must be "
            "a list of {user: ...} / {assistant: ...} turns"
        )
    return PromptSet(name=name, templates=data, example=tuple(turns))
