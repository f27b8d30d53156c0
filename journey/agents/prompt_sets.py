"""Prompt templates, loaded from the package's `prompts/*.yaml` data files, or from a
file of the same layout that a user gives in their place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
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

    def require(self, keys: Iterable[str]) -> PromptSet:
        """The set itself, once it is known to hold every template in `keys`.

        Raises:
            ConfigError: some are missing; the message names them.
        """
        missing = [key for key in keys if key not in self.templates]
        if missing:
            raise ConfigError(f"prompt set {self.name!r} lacks {', '.join(map(repr, missing))}")
        return self


@cache
def load_prompts(name: str) -> PromptSet:
    """Load `journey/agents/prompts/<name>.yaml`."""
    text = resources.files("journey.agents").joinpath("prompts", f"{name}.yaml").read_text("utf-8")
    return _prompt_set(f"{name}.yaml", name, text)


def load_prompt_file(path: Path | str) -> PromptSet:
    """Load a prompt file a user wrote, laid out as the package's (`prompts/*.yaml`).

    Raises:
        ConfigError: the file cannot be read, or is not such a mapping.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read prompt file {str(file)!r}: {error}") from None
    return _prompt_set(str(file), file.stem, text)


def _prompt_set(where: str, name: str, text: str) -> PromptSet:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"prompt file {where} is not YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"prompt file {where} must be a mapping")
    example = data.pop("example", None) or []
    entries = example if isinstance(example, list) else [example]
    turns = [pair for entry in entries if isinstance(entry, dict) for pair in entry.items()]
    well_formed = all(isinstance(entry, dict) for entry in entries) and all(
        role in ("user", "assistant") and isinstance(turn, str) for role, turn in turns
    )
    if not all(isinstance(v, str) for v in data.values()) or not well_formed:
        raise ConfigError(
            f"prompt file {where} must map names to strings, and its example must be "
            "a list of {user: ...} / {assistant: ...} turns"
        )
    return PromptSet(name=name, templates=data, example=tuple(turns))
