"""Files that survive a kill: atomic rewrites, append-only record logs, settings checks.

Long jobs (`journey eval`, `journey pairs`) append one JSON record per finished item
and, at the end, rewrite their summaries whole. A kill can then leave at most a last
line without its newline, which `read_appended` drops (cutting it from the file, so
appending goes on cleanly), and never a half-written summary, since `write_atomic`
renames a finished file into place. `check_settings` keeps a resumed job from mixing
records made with other settings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from journey.errors import ConfigError

__all__ = ["check_settings", "read_appended", "write_atomic"]

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


def check_settings(
    path: Path,
    wanted: Mapping[str, Any],
    *,
    what: str,
    force: bool = False,
    free: Collection[str] = (),
) -> None:
    """Refuse to resume with other settings than `path` records, then record `wanted`.

    Args:
        path: The JSON settings file beside the job's records.
        wanted: This run's settings.
        what: Names the records in the error ("eval/ holds an evaluation").
        force: Resume anyway (the records then mix settings).
        free: Settings that may change between runs.

    Raises:
        ConfigError: A setting outside `free` differs from the recorded one.
    """
    if path.is_file() and not force:
        found = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in wanted if k not in free and found.get(k) != wanted[k])
        if changed:
            details = ", ".join(f"{k}: {found.get(k)!r} -> {wanted[k]!r}" for k in changed)
            raise ConfigError(
                f"{what} made with other settings ({details}); "
                "use another --out, or --force to mix them"
            )
    write_atomic(path, json.dumps(wanted, indent=2) + "\n")
