"""Typer options that take their help and default from a config dataclass's field.

A config says what each field means (`field(metadata={"help": ...})`) and its default;
an option that sets exactly one field takes both from there instead of retyping them,
as TRL builds its command line from its configs:

    LoraRankOption = Annotated[int, field_option(JourneyTrainingFields, "lora_rank")]

    def sft(lora_rank: LoraRankOption = field_default(JourneyTrainingFields, "lora_rank")):

Two calls, because typer reads a default from the signature, never from the option.
Validation stays in the config's `__post_init__`. The config's module is imported with
the CLI, for `journey --help` too, so it must not import torch or the sessions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from rich.markup import escape


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
