"""Errors a *user* can fix: bad configuration, unknown model spec, unreadable input.

Mistakes made by a *model* are never raised: they are recorded on the step as
protocol violations and the session goes on. Transport faults are retried by
the backends. What reaches the user is one of the exceptions below, and the CLI
turns it into a one-line message and a non-zero exit.
"""

from __future__ import annotations


class JourneyError(Exception):
    """Base class for errors the user can act on."""


class ConfigError(JourneyError):
    """A configuration value or command-line option is invalid."""


class ModelSpecError(JourneyError):
    """A model spec string names no known backend or cannot be resolved."""


class ModelUnavailableError(JourneyError):
    """A model could not be loaded or a server could not be reached."""


class DatasetError(JourneyError):
    """An input file or line could not be read."""


def error_line(error: BaseException) -> str:
    """An error in one line, as sessions and job records log it: its type, then the first
    line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
