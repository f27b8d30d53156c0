"""Which model specs can be trained, and where their weights are.

Free of torch: `journey iterate` checks its recipe's starting model before any work.
"""

from __future__ import annotations

from pathlib import Path

from journey.agents.backends.registry import backend, backends
from journey.agents.backends.spec import parse_model_spec
from journey.errors import ConfigError

__all__ = ["check_trainable", "model_directory"]


def check_trainable(spec_text: str) -> None:
    """Refuse a spec without local weights, without fetching or loading anything.

    Raises:
        ConfigError: the spec names a server or a fake, which cannot be trained.
        ModelSpecError: the spec is malformed.
    """
    spec = parse_model_spec(spec_text)
    if backend(spec.backend).local_weights is None:
        raise ConfigError(
            f"cannot train {spec_text!r}: training needs local weights ({_trainable_specs()})"
        )


def model_directory(spec_text: str) -> Path:
    """The local directory of a trainable model spec (embedded, hf:DIR or a directory).

    Raises:
        ConfigError: the spec names a server or a fake, which cannot be trained.
        ModelSpecError: the spec is malformed or the directory is missing.
    """
    check_trainable(spec_text)
    spec = parse_model_spec(spec_text)
    local_weights = backend(spec.backend).local_weights
    assert local_weights is not None  # checked above
    return local_weights(spec)


def _trainable_specs() -> str:
    """The specs with local weights, e.g. "embedded, hf:DIR or a directory"."""
    forms: list[str] = []
    for each in backends():
        if each.local_weights is not None:
            forms += [each.syntax, each.claims_hint] if each.claims_hint else [each.syntax]
    return f"{', '.join(forms[:-1])} or {forms[-1]}" if len(forms) > 1 else "".join(forms)
