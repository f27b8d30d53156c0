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
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"prompt file {name}.yaml must map names to strings")
    return PromptSet(name=name, templates=data)
