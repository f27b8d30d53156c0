"""The options of the requests' cache, prices and budgets are one definition shared by
`journey synth`, `eval` and `pairs` (`journey.cli._options`): the same flags, help and
defaults on all three, saying what the fields of `SpendSettings` and `RunBudget` say."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from rich.text import Text

from journey.agents.backends.cached_client import CacheMode
from journey.cli import app
from journey.cli._options import field_default, field_help, spend_settings
from journey.errors import ConfigError
from journey.runs.request_accounts import SpendSettings
from journey.runs.response_cache import CacheSettings
from journey.runs.spend import RunBudget

COMMANDS = ("synth", "eval", "pairs")
SHARED = ("cache", "cache_mode", "budget_tokens", "budget_usd", "prices")
FIELDS = {  # the option, the config field whose help it repeats
    "budget_tokens": (RunBudget, "tokens"),
    "budget_usd": (RunBudget, "usd"),
    "prices": (SpendSettings, "prices"),
}


def params(command: str) -> dict[str, Any]:
    """The options of `journey COMMAND` (of `journey eval`'s group callback for eval)."""
    found: Any = typer.main.get_command(app)
    return {p.name: p for p in found.commands[command].params}


@pytest.mark.parametrize("name", SHARED)
def test_the_three_commands_share_each_option(name: str) -> None:
    first, *others = (params(command)[name] for command in COMMANDS)
    for other in others:
        assert (other.opts, other.help, other.default) == (first.opts, first.help, first.default)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_an_option_says_what_its_field_says(name: str) -> None:
    config, field = FIELDS[name]
    param = params("eval")[name]
    assert Text.from_markup(param.help).plain == field_help(config, field)
    if name != "prices":  # a file of prices, not the prices
        assert param.default == field_default(config, field)


def test_the_cache_mode_defaults_to_the_settings_mode() -> None:
    assert params("eval")["cache_mode"].default == CacheSettings().mode.value


def test_the_options_build_the_settings(tmp_path: Any) -> None:
    (tmp_path / "p.yaml").write_text("m: {in: 1, out: 2}\n")
    built = spend_settings(
        cache=tmp_path / "c",
        cache_mode="read",
        prices=tmp_path / "p.yaml",
        budget_tokens=10,
        budget_usd=None,
    )
    assert built.cache == CacheSettings(mode=CacheMode.READ, directory=tmp_path / "c")
    assert built.prices["m"].record() == {"in": 1.0, "out": 2.0}
    assert built.budget == RunBudget(tokens=10)
    assert built.record()["budget"] == {"tokens": 10}
    with pytest.raises(ConfigError, match="cache mode must be one of"):
        spend_settings(cache=None, cache_mode="x", prices=None, budget_tokens=None, budget_usd=None)
