"""The package's shape, checked: imports point one way through the rooms, no room
imports another room's private module, only the view and the CLI draw, and modules
stay small. The README's "Architecture" section draws the same order."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "journey"

ROOMS = (
    "errors",
    "protocols",
    "problems",
    "engine",
    "agents",
    "sessions",
    "longthought",
    "runs",
    "exports",
    "evaluation",
    "training",
    "view",
    "cli",
)
"""From the bottom up: a room imports only rooms before it (and itself)."""

DRAWING = ("rich", "textual")
"""Terminal libraries; only these rooms may import them."""
DRAWING_ROOMS = ("view", "cli")

MAX_LINES = 400
TO_SPLIT: dict[str, int] = {}
"""Modules still over `MAX_LINES`, at most as long as they are today: this list only
shrinks (the redesign issue's note says which are next)."""


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    module: str
    names: tuple[str, ...]


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "journey" else None


def imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = tuple(alias.name for alias in node.names)
                found.append(Import(path, node.lineno, node.module, names))
            elif isinstance(node, ast.Import):
                found += [Import(path, node.lineno, alias.name, ()) for alias in node.names]
    return found


def source_room(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def where(item: Import) -> str:
    return f"{item.source.relative_to(PACKAGE.parent)}:{item.line} imports {item.module}"


def test_every_module_is_in_a_room() -> None:
    loose = {"__init__", "__main__"}
    for path in PACKAGE.rglob("*.py"):
        room = source_room(path)
        assert room in ROOMS or room in loose, f"{path} is in no room of {ROOMS}"


def test_imports_point_from_the_cli_down_to_the_protocols() -> None:
    upward = []
    for item in imports():
        target = room_of(item.module)
        if target is None:
            continue
        source = source_room(item.source)
        if source in ROOMS and ROOMS.index(target) > ROOMS.index(source):
            upward.append(where(item))
    assert upward == []


def test_no_room_imports_another_rooms_private_module() -> None:
    private = []
    for item in imports():
        target = room_of(item.module)
        if target is None or target == source_room(item.source):
            continue
        parts = item.module.split(".")
        if any(part.startswith("_") for part in parts) or any(
            name.startswith("_") for name in item.names
        ):
            private.append(where(item))
    assert private == []


def test_only_the_view_and_the_cli_draw() -> None:
    drawing = [
        where(item)
        for item in imports()
        if item.module.split(".")[0] in DRAWING and source_room(item.source) not in DRAWING_ROOMS
    ]
    assert drawing == []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_modules_stay_small(path: Path) -> None:
    name = path.relative_to(PACKAGE).as_posix()
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= TO_SPLIT.get(name, MAX_LINES), f"{name} has {lines} lines"


def test_the_list_of_modules_to_split_names_only_long_modules() -> None:
    for name, ceiling in TO_SPLIT.items():
        lines = len((PACKAGE / name).read_text(encoding="utf-8").splitlines())
        assert MAX_LINES < lines <= ceiling, f"{name}: {lines} lines; update TO_SPLIT"


def test_the_synth_help_lists_the_strategies_own_summaries() -> None:
    from journey.cli.synth import STRATEGY_HELP
    from journey.sessions.strategies import strategies_help

    assert strategies_help() == STRATEGY_HELP
