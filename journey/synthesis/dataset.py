"""Problem datasets: JSONL files of problems with gold answers, read honestly.

One JSON object per line, MATH-style by default (`problem`, `answer`; MATH500's
`solution`, `subject`, `level`, `unique_id` are kept in `meta`). Bad input is
never dropped silently: a line that is not UTF-8, not JSON, not an object, or
lacks a problem or an answer becomes a `DatasetIssue` naming `file:line`. It is
logged and skipped, or raised as a `DatasetError` with `strict=True`.

Each record gets a stable session id: the hash of its problem
(`session_id_for`), with the record's index appended when the same problem came
earlier in the file, so re-runs, resumes and shards all find the same session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journey.errors import ConfigError, DatasetError
from journey.synthesis.debate import session_id_for

__all__ = [
    "DatasetIssue",
    "ProblemDataset",
    "ProblemRecord",
    "Shard",
    "load_problems",
]

logger = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ProblemRecord:
    """One problem of a dataset."""

    index: int
    """0-based position among the file's non-blank lines (bad lines count too, so fixing
    one does not shift the others); shards are taken by this index."""
    problem: str
    answer: str
    session_id: str
    """Stable id of the session that debates this problem."""
    line: int = 0
    """1-based line number in the file."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Every other field of the line (subject, level, unique_id, solution...)."""


@dataclass(frozen=True)
class DatasetIssue:
    """A line that was skipped, and why."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the records whose index is `index` modulo `count`."""

    index: int = field(metadata={"help": "Which shard, from 0 to count - 1."})
    count: int = field(metadata={"help": "How many shards the dataset is split into."})

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"shard count must be at least 1, got {self.count!r}")
        if not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count} does not exist: "
                f"the index must be 0..{self.count - 1}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Read `i/n`, e.g. `0/4`."""
        index, slash, count = text.strip().partition("/")
        try:
            if not slash:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise ConfigError(f"shard {text!r} should look like i/n, e.g. 0/4") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, record: ProblemRecord) -> bool:
        return record.index % self.count == self.index


@dataclass(frozen=True)
class ProblemDataset:
    """The usable records of a file, and the issues of the lines that were skipped."""

    path: Path
    records: list[ProblemRecord]
    issues: list[DatasetIssue]

    def __len__(self) -> int:
        return len(self.records)

    def select(
        self, *, offset: int = 0, limit: int | None = None, shard: Shard | None = None
    ) -> list[ProblemRecord]:
        """Records `offset .. offset + limit` of the file, then the shard's share of them.

        Slicing first and sharding second means the shards of a selection together hold
        exactly what the unsharded selection holds.

        Raises:
            ConfigError: a negative offset or limit, or an offset past the last record.
        """
        if offset < 0:
            raise ConfigError(f"offset must be 0 or more, got {offset!r}")
        if limit is not None and limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit!r}")
        if offset and offset >= len(self.records):
            raise ConfigError(
                f"offset {offset} is past the end of {self.path} ({len(self.records)} problems)"
            )
        chosen = self.records[offset : None if limit is None else offset + limit]
        return [r for r in chosen if shard is None or shard.holds(r)]


def load_problems(
    path: Path | str,
    *,
    problem_field: str = "problem",
    answer_field: str = "answer",
    strict: bool = False,
) -> ProblemDataset:
    """Read a JSONL file of problems.

    Args:
        path: The file, one JSON object per line (blank lines are ignored).
        problem_field: The field holding the problem statement.
        answer_field: The field holding the gold answer (a string or a number).
        strict: Raise on the first bad line instead of skipping it.

    Raises:
        DatasetError: the file cannot be read, holds no usable problem, or (with
            `strict`) a line is bad; the message names `file:line`.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DatasetError(f"dataset file {str(path)!r} {what}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read dataset file {str(path)!r}: {error.strerror}") from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    records: list[ProblemRecord] = []
    issues: list[DatasetIssue] = []
    seen: set[str] = set()
    index = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        parsed = _parse_line(raw, problem_field, answer_field)
        if isinstance(parsed, str):
            issue = DatasetIssue(str(path), number, parsed)
            if strict:
                raise DatasetError(str(issue))
            logger.warning("skipped %s", issue)
            issues.append(issue)
        else:
            problem, answer, meta = parsed
            session_id = session_id_for(problem)
            if session_id in seen:  # the same problem again: its own, equally stable, session
                session_id = f"{session_id}-{index}"
            seen.add(session_id)
            records.append(ProblemRecord(index, problem, answer, session_id, number, meta))
        index += 1
    if not records:
        if issues:
            raise DatasetError(
                f"no usable problem in {path}: all {len(issues)} lines are bad (first: {issues[0]})"
            )
        raise DatasetError(f"dataset file {str(path)!r} is empty")
    return ProblemDataset(path, records, issues)


def _parse_line(
    raw: bytes, problem_field: str, answer_field: str
) -> tuple[str, str, dict[str, Any]] | str:
    """The problem, answer and meta of one line, or what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.start + 1].hex()
        return f"not UTF-8 (byte 0x{bad} at column {error.start + 1})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg} at column {error.colno}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {_json_type(value)}"
    fields: list[str] = []
    for name in (problem_field, answer_field):
        if name not in value:
            return f"no {name!r} field (fields: {', '.join(sorted(value)) or 'none'})"
        content = value[name]
        if isinstance(content, int | float) and not isinstance(content, bool):
            content = str(content)
        if not isinstance(content, str):
            return f"{name!r} must be a string, got {_json_type(content)}"
        if not content.strip():
            return f"{name!r} is empty"
        fields.append(content.strip())
    meta = {k: v for k, v in value.items() if k not in (problem_field, answer_field)}
    return fields[0], fields[1], meta


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def issue_lines(issues: Sequence[DatasetIssue], *, show: int = 5) -> Iterable[str]:
    """The first `show` issues, one line each, then how many more there are."""
    for issue in issues[:show]:
        yield str(issue)
    if len(issues) > show:
        yield f"... and {len(issues) - show} more"
