"""Options that set a config field say what the field says: its help and its default.

A light config (no torch on import) gives the option both (`journey.cli._options`);
an option of a config whose module imports torch repeats them by hand, since
`journey --help` must stay light, and is checked against the field here.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from journey.cli import app
from journey.cli._options import config_field, field_default, field_help, field_option
from journey.cli.debate import DEMO_MAX_TURNS
from journey.evaluation.critic_eval import CriticEvalOptions
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.runner import EvalOptions
from journey.exports.options import ExportOptions
from journey.longthought.smoothing import FaithfulnessChecker
from journey.protocols.expansion import CHECK_KEYS, ExpansionChecks
from journey.runs.endpoint_health import ErrorStreak
from journey.runs.expansion import ExpandOptions
from journey.runs.ray_units import RayOptions
from journey.runs.request_accounts import SpendSettings
from journey.runs.spend import RunBudget
from journey.runs.synthesis import SynthesisOptions
from journey.sessions.base import SessionLimits
from journey.sessions.beam_select import BeamOptions
from journey.training.fields import JourneyTrainingFields


@dataclass(frozen=True)
class Mapped:
    """A command's option that sets one config field."""

    command: str
    option: str
    """The command function's parameter."""
    config: type[Any]
    field: str
    same_help: bool = True
    """False where the option's help is the command's own (it names other flags)."""
    same_default: bool = True
    help_prefix: str = ""
    """What the option's help says before the field's (when it applies)."""

    def __str__(self) -> str:
        return f"{self.command} {self.option}"


BUILT = [  # field_option/field_default: the config module is light
    *(
        Mapped(command, option, JourneyTrainingFields, name)
        for command in ("train sft", "train dpo")
        for option, name in (("model", "model_spec"), ("lora", "lora"), ("lora_rank", "lora_rank"))
    ),
    *(Mapped("expand", name, ExpansionChecks, name) for name in CHECK_KEYS),
]

SYNTH = SynthesisOptions
TYPED = [  # repeated by hand: the config's module imports torch
    *(
        Mapped(command, name, SYNTH, name)
        for command in ("synth", "debate")
        for name in ("critic_mode", "step_tokens", "critic_tokens")
    ),
    *(
        Mapped(command, name, SYNTH, name, same_help=False)
        for command in ("synth", "debate")
        for name in ("policy", "critic", "critic_reasks")
    ),
    Mapped("synth", "concurrency", SYNTH, "concurrency"),
    Mapped("synth", "policy_concurrency", SYNTH, "policy_concurrency", same_help=False),
    Mapped("synth", "critic_concurrency", SYNTH, "critic_concurrency", same_help=False),
    Mapped("synth", "max_turns", SessionLimits, "max_turns"),
    Mapped("synth", "budget_tokens", RunBudget, "tokens"),
    Mapped("synth", "budget_usd", RunBudget, "usd"),
    Mapped("synth", "prices", SpendSettings, "prices", same_default=False),  # a file, not a table
    *(
        Mapped(command, name, SessionLimits, name)
        for command in ("synth", "debate")
        for name in ("max_depth", "max_tokens")
    ),
    *(
        Mapped(command, "max_consecutive_errors", ErrorStreak, "limit", same_help=False)
        for command in ("synth", "eval", "pairs")
    ),
    *(
        Mapped("eval", name, EvalOptions, name)
        for name in ("model", "batch_size", "max_new_tokens", "temperature")
    ),
    *(
        Mapped("pairs", name, PairsOptions, name)
        for name in (
            "model",
            "samples",
            "pairs_per_problem",
            "temperature",
            "top_p",
            "max_new_tokens",
            "seed",
            "batch_size",
        )
    ),
    Mapped(
        "export", "format", ExportOptions, "format", same_default=False
    ),  # a field with no default
    *(
        Mapped("export", name, ExportOptions, name)
        for name in (
            "layout",
            "only_verified",
            "same_problems",
            "min_reflections",
            "min_backtracks",
            "max_tokens",
            "tokenizer",
            "max_violations",
            "transcript",
            "prm_unknown",
            "credit_verified_path",
            "allow_empty",
            "max_pairs_per_session",
            "limit",
        )
    ),
    *(
        Mapped("expand", name, ExpandOptions, name)
        for name in ("solution_field", "answer_field", "attempts", "expansion_tokens")
    ),
    Mapped("expand", "concurrency", ExpandOptions, "concurrency"),
    *(Mapped("expand", name, ExpandOptions, name, same_help=False) for name in ("model", "prompt")),
    Mapped("expand", "max_consecutive_errors", ErrorStreak, "limit", same_help=False),
    *(
        Mapped(command, f"ray_{name}", RayOptions, name, help_prefix="With --ray: ")
        for command in ("synth", "eval", "pairs")
        for name in ("workers", "units", "worker_cpus", "worker_gpus")
    ),
    *(
        Mapped("eval critic", name, CriticEvalOptions, name)
        for name in ("critic_mode", "critic_tokens", "calibrate", "concurrency")
    ),
    *(
        Mapped("eval critic", name, CriticEvalOptions, name, same_help=False)
        for name in ("critic", "critic_reasks")  # the options synth and debate share
    ),
    Mapped("smooth", "min_length", FaithfulnessChecker, "min_length_ratio"),
    Mapped("smooth", "max_length", FaithfulnessChecker, "max_length_ratio"),
]


def _command(path: str) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return command


def _param(mapped: Mapped) -> Any:
    [param] = [p for p in _command(mapped.command).params if p.name == mapped.option]
    return param


@functools.cache
def _help_lines(path: str) -> dict[str, str]:
    """`journey PATH --help`, wide enough for one line per option, by the option's flag."""
    result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    lines = {}
    for line in result.output.splitlines():
        found = re.match(r"│ [* ]*(--[\w-]+)\s", line)  # `*`: a required option
        if found:
            lines[found.group(1)] = " ".join(line.split())
    return lines


def _shown(default: Any) -> str | None:
    """How typer shows a default in help, or None where it shows none."""
    if default is None or isinstance(default, bool):
        return None
    return str(default)


@pytest.mark.parametrize("mapped", BUILT + TYPED, ids=str)
def test_the_option_says_what_its_field_says(mapped: Mapped) -> None:
    param = _param(mapped)
    line = _help_lines(mapped.command)[param.opts[0]]
    if mapped.same_help:
        text = field_help(mapped.config, mapped.field)
        assert Text.from_markup(param.help).plain == mapped.help_prefix + text
        assert text in line
    if mapped.same_default:
        default = field_default(mapped.config, mapped.field)
        assert param.default == default
        shown = _shown(default)
        if shown is not None and param.show_default is not False:
            assert f"[default: {shown}]" in line


@pytest.mark.parametrize("mapped", BUILT + TYPED, ids=str)
def test_every_field_with_an_option_has_a_help_string(mapped: Mapped) -> None:
    assert config_field(mapped.config, mapped.field).metadata.get("help")


def test_the_train_options_are_built_from_the_light_training_fields() -> None:
    assert JourneyTrainingFields.__module__ == "journey.training.fields"
    for mapped in BUILT:
        assert _param(mapped).help == field_help(mapped.config, mapped.field)


@pytest.mark.parametrize(
    ("option", "name"),
    [("beam_width", "width"), ("beam_size", "size"), ("beam_temperature", "temperature"),
     ("beam_walk_trials", "walk_trials")],
)  # fmt: skip
def test_beam_options_name_the_defaults_of_beam_options(option: str, name: str) -> None:
    """Unset (None), a beam option leaves the setting to `BeamOptions`; its help says the value."""
    param = _param(Mapped("synth", option, BeamOptions, name))
    assert param.default is None
    assert param.help.endswith(f"(default {field_default(BeamOptions, name)}).")


def test_debate_max_turns_names_the_default_and_the_demo_one() -> None:
    param = _param(Mapped("debate", "max_turns", SessionLimits, "max_turns"))
    text = field_help(SessionLimits, "max_turns").removesuffix(".")
    default = field_default(SessionLimits, "max_turns")
    assert param.help == f"{text} \\[default: {default}; {DEMO_MAX_TURNS} with --demo]."


def test_importing_the_cli_imports_neither_torch_nor_the_sessions() -> None:
    code = (
        "import sys, journey.cli; "
        "print(sorted(m for m in ('torch', 'trl', 'journey.sessions', 'journey.agents') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


# -- the helpers ------------------------------------------------------------------------------


@dataclass
class _Settings:
    width: int = field(default=3, metadata={"help": "Children per node [default: 3], or [b]."})
    names: tuple[str, ...] = field(default_factory=tuple, metadata={"help": "Names."})
    required: str = field(default="", metadata={})


def test_field_option_escapes_the_help_as_markup() -> None:
    option = field_option(_Settings, "width", "--width", min=1)
    assert option.help == "Children per node \\[default: 3], or \\[b]."
    assert Text.from_markup(option.help).plain == "Children per node [default: 3], or [b]."
    assert option.min == 1


def test_the_helpers_refuse_what_a_field_lacks() -> None:
    assert field_default(_Settings, "names") == ()
    with pytest.raises(TypeError, match=r"_Settings.required has no help string"):
        field_option(_Settings, "required")
    with pytest.raises(TypeError, match=r"ExportOptions.format has no default"):
        field_default(ExportOptions, "format")
    with pytest.raises(AttributeError, match=r"_Settings has no field 'depth'"):
        field_help(_Settings, "depth")
