"""The kill-safe file helpers shared by eval, pairs and export (the settings check that
was here is the manifest's: test_manifest)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from journey.runs.files import read_appended, write_atomic


class Item(BaseModel):
    id: str
    value: int


def test_a_cut_last_line_is_dropped_and_cut_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "a", "value": 1}\nnot json\n{"id": "b", "value": 2}\n{"id": "c", "va')
    assert [item.id for item in read_appended(path, Item)] == ["a", "b"]  # bad middle skipped
    assert path.read_text().endswith('"value": 2}\n')  # appending goes on after line b
    assert read_appended(tmp_path / "missing.jsonl", Item) == []


def test_atomic_writes_leave_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.json"
    write_atomic(path, "one\n")
    write_atomic(path, "two\n")
    assert path.read_text() == "two\n" and [p.name for p in path.parent.iterdir()] == ["out.json"]
