"""Texts to analyse, read from what journey writes or from any JSONL file.

`read_thought_source` tells a source's kind from what it finds and reads its texts:

- `run`: a run directory (`sessions.jsonl`, `sessions/`): the long thought of every
  finished session. By default (`ThoughtVersion.SMOOTHED`) that is the rewrite `journey
  smooth` accepted where there is one, as `journey export` exports it, else the draft;
  the draft is its `transcript.md` (written from its event log where that file is
  missing), as `journey stats` reads it. How many texts of each version were read is
  counted (`ThoughtSource.versions`); unfinished sessions are counted, not read.
- `eval`: a `journey eval` directory, or its `records.jsonl`: each record's `output`.
- `export`: a `journey export` sft or shortcut JSONL: each row's assistant turn (the
  `completion`, or the last assistant message of `messages`).
- `column`: a JSONL file whose first row has the `column` asked for: the field at that
  dotted path (`meta.text`, `messages.-1.content`) in every row; a list of chat
  messages gives its last assistant turn. A file whose first row lacks it is read by
  its kind, so one `column` serves a mix of sources.

Nothing is written, not even to repair a file. A line that is not UTF-8, not JSON or
not an object (or, in eval records, not a record) is counted as malformed with its
number and skipped; a row without a text is counted under its reason. What cannot be
read at all (no such path, a file whose rows are of no known kind and lack the column)
is a `DatasetError` that names the path.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from journey.errors import DatasetError
from journey.evaluation.metrics import EvalRecord
from journey.runs.smoothing_job import accepted_smoothed
from journey.runs.stats import read_run

__all__ = ["SourceKind", "ThoughtSource", "ThoughtVersion", "read_thought_source", "text_at"]

RECORDS_FILE = "records.jsonl"
"""An evaluation directory's records (`journey.evaluation.runner`)."""

MALFORMED_SHOWN = 3
"""Malformed lines a source keeps the number and reason of (all are counted)."""


class SourceKind(StrEnum):
    """What a source is; see the module docstring."""

    RUN = "run"
    EVAL = "eval"
    EXPORT = "export"
    COLUMN = "column"


class ThoughtVersion(StrEnum):
    """Which long thought of a run's session is read."""

    SMOOTHED = "smoothed"
    """The rewrite `journey smooth` accepted, where there is one; else the draft."""
    DRAFT = "draft"
    """The draft: `transcript.md`, as the session wrote it."""


@dataclass
class ThoughtSource:
    """The texts of one source, and what was not read from it."""

    name: str
    """The directory's name, or the file's (its directory's for `records.jsonl`)."""
    kind: SourceKind
    path: Path
    texts: list[str] = field(default_factory=list, repr=False)
    malformed_lines: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    """The first few malformed lines, as ``line N: why``."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Rows or sessions that gave no text, by reason."""
    versions: dict[str, int] = field(default_factory=dict)
    """A run's texts by the version read (`smoothed`, `draft`); empty for other kinds,
    whose texts are whatever their file holds."""

    def _malformed(self, number: int, why: str) -> None:
        self.malformed_lines += 1
        if len(self.malformed_examples) < MALFORMED_SHOWN:
            self.malformed_examples.append(f"line {number}: {why}")


def text_at(row: Any, column: str) -> Any:
    """The value at `column` in `row`: a key, or a dotted path of keys and list indices.

    A key that holds the dots itself wins over the path (`{"a.b": ...}`).

    Raises:
        KeyError: the row has nothing there.
    """
    if isinstance(row, dict) and column in row:
        return row[column]
    value = row
    for part in column.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list):
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                raise KeyError(column) from None
        else:
            raise KeyError(column)
    return value


def _as_text(value: Any) -> str | None:
    """A string as is, a message as its content, chat messages as their last assistant
    turn; None for anything else (a number, a conversation with no assistant turn)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        assistant = [m for m in value if m.get("role") == "assistant"]
        return _as_text(assistant[-1]) if assistant else None
    return None


def _json_rows(path: Path, source: ThoughtSource) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL file with their line numbers; bad lines are counted."""
    try:
        lines = path.open("rb")
    except OSError as error:
        raise DatasetError(f"cannot read {str(path)!r}: {error.strerror or error}") from None
    with lines:
        yield from _parsed_lines(lines, source)


def _parsed_lines(
    lines: Iterable[bytes], source: ThoughtSource
) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            source._malformed(number, "not UTF-8")
            continue
        except ValueError:
            source._malformed(number, "not JSON")
            continue
        if not isinstance(row, dict):
            source._malformed(number, "not a JSON object")
            continue
        yield number, row


def _kind_of_row(row: dict[str, Any]) -> SourceKind | None:
    if "completion" in row or "messages" in row:
        return SourceKind.EXPORT
    if {"output", "gold", "correct"} <= row.keys():
        return SourceKind.EVAL
    return None


def _unknown_rows(path: Path, row: dict[str, Any], column: str | None) -> DatasetError:
    fields = ", ".join(sorted(row)) or "none"
    if column is not None:
        return DatasetError(
            f"the first row of {str(path)!r} has no column {column!r} (its fields: {fields}), "
            "and its rows are neither export rows nor eval records"
        )
    return DatasetError(
        f"cannot tell what {str(path)!r} holds: its rows are neither export rows "
        f"(completion or messages) nor eval records (output, gold, correct); name the "
        f"text field with --column (the first row's fields: {fields})"
    )


class _Reader:
    """Reads one source into a `ThoughtSource`, at most `limit` texts."""

    def __init__(self, source: ThoughtSource, limit: int | None) -> None:
        self.source = source
        self.limit = limit
        self.skipped: Counter[str] = Counter()

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.source.texts) >= self.limit

    def take(self, text: str | None, reason: str) -> None:
        if text is None:
            self.skipped[reason] += 1
        else:
            self.source.texts.append(text)

    def done(self) -> ThoughtSource:
        self.source.skipped = dict(sorted(self.skipped.items()))
        return self.source

    def run(self, root: Path, thought: ThoughtVersion) -> None:
        contents = read_run(root)
        if contents.unfinished:
            self.skipped["unfinished session"] += len(contents.unfinished)
        read: Counter[ThoughtVersion] = Counter()
        for summary in contents.finished:
            if self.full:
                break
            folder = contents.events_path(summary.session_id).parent
            if thought is ThoughtVersion.SMOOTHED:
                smoothed = accepted_smoothed(folder)
                if smoothed is not None:
                    read[ThoughtVersion.SMOOTHED] += 1
                    self.source.texts.append(smoothed)
                    continue
            draft = contents.transcript(summary.session_id)
            if draft is not None:
                read[ThoughtVersion.DRAFT] += 1
            self.take(draft, "no transcript")
        self.source.versions = {version.value: read[version] for version in ThoughtVersion}

    def eval_records(self, path: Path) -> None:
        if not path.is_file():
            return  # an evaluation that has graded nothing yet
        for number, row in _json_rows(path, self.source):
            if self.full:
                return
            try:
                record = EvalRecord.model_validate(row)
            except ValidationError:
                self.source._malformed(number, "not an eval record")
                continue
            self.source.texts.append(record.output)

    def export_rows(self, path: Path) -> None:
        for _, row in _json_rows(path, self.source):
            if self.full:
                return
            turns = row.get("completion", row.get("messages"))
            self.take(_as_text(turns), "no assistant turn")

    def column(self, path: Path, column: str) -> None:
        for _, row in _json_rows(path, self.source):
            if self.full:
                return
            try:
                value = text_at(row, column)
            except KeyError:
                self.skipped[f"no {column}"] += 1
                continue
            self.take(_as_text(value), f"{column} not text")


def _has(row: dict[str, Any], column: str) -> bool:
    try:
        text_at(row, column)
    except KeyError:
        return False
    return True


def _first_row(path: Path) -> dict[str, Any] | None:
    scratch = ThoughtSource("", SourceKind.COLUMN, path)
    return next((row for _, row in _json_rows(path, scratch)), None)


def read_thought_source(
    path: Path,
    *,
    column: str | None = None,
    limit: int | None = None,
    thought: ThoughtVersion = ThoughtVersion.SMOOTHED,
) -> ThoughtSource:
    """Read the texts of one source, telling its kind from what is there.

    Args:
        path: A run directory, an evaluation directory, an export JSONL, eval records,
            or (with `column`) any JSONL file.
        column: The text field of JSONL files (a dotted path allowed): a file whose
            first row has it is read as a column; other files and directories by kind.
        limit: Read at most this many texts.
        thought: Which long thought of a run's sessions is read: the accepted smoothed
            rewrite where there is one (else the draft), or always the draft. Other
            kinds of source are read as they are.

    Raises:
        DatasetError: `path` does not exist, is a directory of neither kind, or is a
            file whose first row has neither `column` nor a known kind, or holds no JSON
            object (without `column`).
    """
    path = Path(path)
    if path.is_dir():
        reader = _Reader(ThoughtSource(path.resolve().name, SourceKind.RUN, path), limit)
        if (path / RECORDS_FILE).is_file() or (path / "eval.json").is_file():
            reader.source.kind = SourceKind.EVAL
            reader.eval_records(path / RECORDS_FILE)
        elif (path / "sessions.jsonl").is_file() or (path / "sessions").is_dir():
            reader.run(path, thought)
        else:
            raise DatasetError(
                f"{str(path)!r} is neither a run directory (sessions.jsonl, sessions/) nor "
                f"an evaluation directory ({RECORDS_FILE})"
            )
        return reader.done()
    if not path.is_file():
        raise DatasetError(f"no file or directory at {str(path)!r}")
    name = path.resolve().parent.name if path.name == RECORDS_FILE else path.name
    first = _first_row(path)
    if column is not None and (first is None or _has(first, column)):
        # a file with no row is an empty file of texts; its malformed lines are still counted
        reader = _Reader(ThoughtSource(name, SourceKind.COLUMN, path), limit)
        reader.column(path, column)
        return reader.done()
    if first is None:
        raise DatasetError(f"{str(path)!r} holds no JSON object line to analyse")
    kind = _kind_of_row(first)
    if kind is None:
        raise _unknown_rows(path, first, column)
    reader = _Reader(ThoughtSource(name, kind, path), limit)
    if kind is SourceKind.EVAL:
        reader.eval_records(path)
    else:
        reader.export_rows(path)
    return reader.done()
