"""The Typer application, its consoles, and what several commands share."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from journey.errors import JourneyError

app = typer.Typer(
    help="Journey learning: policy/critic debates that grow reasoning trees and long thoughts.\n\n"
    "Example:\n\n    journey debate --demo",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
model_app = typer.Typer(help="Manage the embedded default model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

console = Console()
err_console = Console(stderr=True)

PolicyOption = Annotated[
    str, typer.Option("--policy", help="Model spec of the policy (see 'journey models').")
]
CriticOption = Annotated[
    str, typer.Option("--critic", help="Model spec of the critic (see 'journey models').")
]


def default_run_dir(kind: str) -> Path:
    return Path("runs") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    # Commands print a dataset's bad lines themselves (the first few and a count); the
    # loader's per-line warnings would print each one again, every one of them.
    logging.getLogger("journey.synthesis.dataset").setLevel(logging.ERROR)
    try:
        app()
    except JourneyError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
