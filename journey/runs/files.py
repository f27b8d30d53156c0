"""Files that survive a kill: atomic rewrites and append-only record logs.

Long jobs (`journey eval`, `journey pairs`) append one JSON record per finished item
and, at the end, rewrite their summaries whole. A kill can then leave at most a last
line without its newline, which `read_appended` drops (cutting it from the file, so
appending goes on cleanly), and never a half-written summary, since `write_atomic`
renames a finished file into place. What keeps a resumed job from mixing records made
with other settings is its manifest (`journey.runs.manifest`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["read_appended", "write_atomic"]

logger = logging.getLogger(__name__)

RecordT = TypeVar("RecordT", bound=BaseModel)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def read_appended(path: Path, model: type[RecordT]) -> list[RecordT]:
    """The records of an append-only JSONL file, in file order ([] when it is missing).

    A last line cut off by a killed run is dropped and cut from the file; a bad line
    elsewhere is logged with its number and skipped.
    """
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    records: list[RecordT] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate_json(line))
        except ValidationError:
            if number == len(lines):  # no newline after it: a write that was interrupted
                logger.warning("%s:%d: dropping a partly written line", path, number)
                kept = "".join(f"{earlier}\n" for earlier in lines[:-1] if earlier.strip())
                path.write_text(kept, encoding="utf-8")
            else:
                logger.warning("%s:%d: skipping an unreadable line", path, number)
    return records
