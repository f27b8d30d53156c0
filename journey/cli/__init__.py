"""The `journey` command line. Thin: each module parses one command's options,
wires the parts together and prints."""

from journey.cli import debate, model, replay, stats, synth  # noqa: F401  (importing registers the commands)
from journey.cli._app import app, main

__all__ = ["app", "main"]
