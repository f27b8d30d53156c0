"""The kill-safe file helpers shared by eval, pairs and export."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from journey.errors import ConfigError
from journey.runs.files import check_settings, read_appended, write_atomic


class Item(BaseModel):
    id: str
    value: int


def test_a_cut_last_line_is_dropped_and_cut_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "a", "value": 1}\nnot json\n{"id": "b", "value": 2}\n{"id": "c", "va')
    assert [item.id for item in read_appended(path, Item)] == ["a", "b"]  # bad middle skipped
    assert path.read_text().endswith('"value": 2}\n')  # appending goes on after line b
    assert read_appended(tmp_path / "missing.jsonl", Item) == []


def test_settings_may_not_change_unless_free_or_forced(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    check_settings(path, {"model": "a", "dataset": "x"}, what="run")
    check_settings(path, {"model": "a", "dataset": "y"}, what="run", free={"dataset"})
    with pytest.raises(ConfigError, match=r"run made with other settings \(model: 'a' -> 'b'\)"):
        check_settings(path, {"model": "b", "dataset": "y"}, what="run")
    check_settings(path, {"model": "b", "dataset": "y"}, what="run", force=True)
    assert '"model": "b"' in path.read_text()


def test_atomic_writes_leave_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.json"
    write_atomic(path, "one\n")
    write_atomic(path, "two\n")
    assert path.read_text() == "two\n" and [p.name for p in path.parent.iterdir()] == ["out.json"]
