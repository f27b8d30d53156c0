"""Importing journey's rooms imports neither torch nor transformers (about 6 s): only
loading a model does. Each check runs in a fresh interpreter, since this one has
imported them long ago."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers")

LIGHT_ROOMS = [
    "journey.protocols",
    "journey.problems",
    "journey.engine",
    "journey.agents",
    "journey.agents.backends",
    "journey.agents.backends.transformers_client",
    "journey.sessions",
    "journey.longthought",
    "journey.runs",
    "journey.exports",
]


@pytest.mark.parametrize("module", LIGHT_ROOMS)
def test_importing_a_room_leaves_torch_and_transformers_unloaded(module: str) -> None:
    check = f"import sys, {module}; print(*[name in sys.modules for name in {HEAVY!r}])"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "False"], f"{module} imports {HEAVY}"


def test_building_a_local_client_leaves_torch_unloaded() -> None:
    """The client's worker thread imports torch when the model loads, not before."""
    check = (
        "import sys\n"
        "from journey.agents.backends import create_client, parse_model_spec\n"
        "create_client(parse_model_spec('embedded?temperature=0'))\n"
        f"print(*[name in sys.modules for name in {HEAVY!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "False"]
