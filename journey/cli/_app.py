"""The Typer application, its consoles, and what several commands share."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from journey.errors import JourneyError

# Help strings are rich markup, so a literal bracket is written `\\[` (as in
# "\\[default: 16]"); tests/test_markup.py checks that no command's help loses text to it.
app = typer.Typer(
    help="Journey learning: policy/critic debates that grow reasoning trees and long thoughts.\n\n"
    "Example:\n\n    journey debate --demo",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
model_app = typer.Typer(help="Manage the embedded default model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

# What the CLI prints is full of user text (model specs, paths, problems, error messages
# that quote them), so its consoles never read markup or :emoji: codes in a string:
# `data[v2].jsonl` stays whole and `[/old]` cannot crash the print. Styles come from
# `Text` objects (`Text.assemble(("error:", "bold red"), " ", message)`), never from tags.
console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)

# Options that set a field of a config in a heavy module (one that imports torch through
# journey.agents) repeat the field's help and default: `journey --help` must not import
# torch. tests/test_cli_options.py keeps them equal to the field's; options of a light
# config take both from the field instead (journey/cli/_options.py).
PolicyOption = Annotated[
    str, typer.Option("--policy", help="Model spec of the policy (see 'journey models').")
]
CriticOption = Annotated[
    str,
    typer.Option(
        "--critic",
        help="Model spec of the critic (see 'journey models'), or rollout:SPEC?n=8 to judge "
        "each step by finishing the solution from it n times with SPEC (Math-Shepherd).",
    ),
]
CriticModeOption = Annotated[
    str, typer.Option(help="How the critic decides: auto, generate or score (log-probs).")
]
MaxDepthOption = Annotated[int, typer.Option(help="Longest path (steps) allowed.")]
MaxTokensOption = Annotated[
    int, typer.Option(help="Generated tokens (both roles) before the session stops.")
]
StepTokensOption = Annotated[
    int,
    typer.Option(help="Generation limit for one policy step (max_tokens in --policy wins)."),
]
CriticTokensOption = Annotated[
    int,
    typer.Option(
        help="Generation limit for one critic verdict, a reasoning critic's thoughts "
        "included (max_tokens in --critic wins)."
    ),
]
CriticReasksOption = Annotated[
    int,
    typer.Option(
        help="How often an unreadable verdict is asked again before the step is left unknown."
    ),
]


def warn(tag: str, message: str, *, sep: str = ": ") -> None:
    """One line on stderr: `tag` in yellow, then `message` exactly as given.

    Args:
        tag: A word or two of the CLI's own, e.g. ``interrupted``.
        message: The rest, printed literally (it may quote paths, problems, errors).
        sep: What goes between them.
    """
    err_console.print(Text.assemble((tag, "yellow"), sep, message), soft_wrap=True)


@contextmanager
def resumable(where: Path | str) -> Iterator[None]:
    """Ctrl-C ends a resumable job with one line saying how to go on, and status 130."""
    try:
        yield
    except KeyboardInterrupt:
        warn("interrupted", f"run the same command again to resume {where}")
        raise typer.Exit(130) from None


def default_run_dir(kind: str) -> Path:
    return Path("runs") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    # Commands print a dataset's bad lines themselves (the first few and a count); the
    # loader's per-line warnings would print each one again, every one of them.
    logging.getLogger("journey.problems.dataset").setLevel(logging.ERROR)
    try:
        app()
    except JourneyError as error:
        err_console.print(Text.assemble(("error:", "bold red"), f" {error}"), soft_wrap=True)
        sys.exit(1)
