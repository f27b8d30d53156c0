"""Problem datasets: JSONL files (or Hugging Face datasets) of problems with gold answers,
read honestly.

One JSON object per line, MATH-style by default (`problem`, `answer`; MATH500's
`solution`, `subject`, `level`, `unique_id` are kept in `meta`). A GSM8K-style answer,
a rationale whose last line is `#### 72`, gives the gold answer `72`; the rationale
is kept in `meta` under the answer field's name, the reference solution `journey
expand --solution-field answer` reads (`journey.problems.reference`). Bad input is
never dropped silently: a line that is not UTF-8, not JSON, not an object, or
lacks a problem or an answer becomes a `DatasetIssue` naming `file:line`. It is
logged and skipped, or raised as a `DatasetError` with `strict=True`.

A source that is not a file, `hf:NAME[:CONFIG][@SPLIT]` or a Hub id such as
`HuggingFaceH4/MATH-500`, is loaded with `datasets` (see `dataset_source` for the
rules); each row is checked like a line, and its issues name `source row N`
(0-based, as `dataset[N]`). `rg:TASK?size=N&seed=S&...` generates reasoning-gym
problems, each with the task's own verifier in `meta["verifier"]` (see `procedural`).

Each record gets a stable session id: the hash of its problem
(`session_id_for`), with the record's index appended when the same problem came
earlier in the file, so re-runs, resumes and shards all find the same session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from journey.errors import ConfigError, DatasetError
from journey.problems.ids import session_id_for
from journey.problems.procedural import (
    VERIFIER_KEY,
    ProceduralSource,
    load_procedural,
    parse_procedural_source,
)
from journey.problems.reference import calculator_annotations, split_answer_line
from journey.problems.source import DatasetSource, load_hf_rows, parse_dataset_source

__all__ = [
    "DatasetIssue",
    "ProblemDataset",
    "ProblemRecord",
    "Shard",
    "issue_lines",
    "json_type",
    "load_problems",
    "read_json_lines",
]

logger = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"

_Parsed = tuple[str, str, dict[str, Any]] | str
"""A line's problem, answer and meta, or what is wrong with it."""


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
    """1-based line number in the file; 0 for a Hugging Face row (its row is `index`)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Every other field of the line (subject, level, unique_id, solution...)."""


@dataclass(frozen=True)
class DatasetIssue:
    """A line (or Hugging Face row) that was skipped, and why."""

    file: str
    """The file, or the Hugging Face source (`hf:NAME@SPLIT`)."""
    line: int
    """1-based line number; the 0-based row index when `unit` is `row`."""
    message: str
    unit: Literal["line", "row"] = "line"

    def __str__(self) -> str:
        if self.unit == "row":
            return f"{self.file} row {self.line}: {self.message}"
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
    """The JSONL file; for a Hugging Face dataset, its name or directory as a path."""
    records: list[ProblemRecord]
    issues: list[DatasetIssue]
    source: DatasetSource | ProceduralSource | None = None
    """Where the records came from, with the split that was loaded; None: the file `path`."""

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
                f"offset {offset} is past the end of {self.source or self.path} "
                f"({len(self.records)} problems)"
            )
        chosen = self.records[offset : None if limit is None else offset + limit]
        return [r for r in chosen if shard is None or shard.holds(r)]


def load_problems(
    path: Path | str,
    *,
    problem_field: str = "problem",
    answer_field: str = "answer",
    strict: bool = False,
    split: str | None = None,
) -> ProblemDataset:
    """Read a JSONL file of problems, or the rows of a Hugging Face dataset.

    Args:
        path: The file, one JSON object per line (blank lines are ignored); or, when it
            is not a file, `hf:NAME[:CONFIG][@SPLIT]` or a Hub id (see `dataset_source`).
        problem_field: The field holding the problem statement.
        answer_field: The field holding the gold answer (a string or a number).
        strict: Raise on the first bad line instead of skipping it.
        split: The split of a Hugging Face dataset (default: `test`, or its only split).

    Raises:
        ConfigError: a malformed `hf:` source, or a split given for a JSONL file.
        DatasetError: the file or dataset cannot be read, holds no usable problem, or
            (with `strict`) a line is bad; the message names `file:line` (or
            `source row N`).
    """
    procedural = parse_procedural_source(str(path))
    if procedural is not None:
        if split is not None:
            raise ConfigError(f"--split does not apply to a reasoning-gym dataset ({path})")
        generated = (
            (p.index, (p.question, p.answer, {VERIFIER_KEY: p.verifier, "task": p.metadata}))
            for p in load_procedural(procedural)
        )
        return _collect(procedural, Path(str(procedural)), generated, unit="row", strict=strict)
    source = parse_dataset_source(path, split=split)
    if source.kind == "hf":
        rows, source = load_hf_rows(source)
        parsed = (
            (row, _parse_row(value, problem_field, answer_field)) for row, value in enumerate(rows)
        )
        return _collect(source, Path(source.name), parsed, unit="row", strict=strict)
    file = Path(source.name)
    lines = (
        (number, error if error is not None else _parse_value(value, problem_field, answer_field))
        for number, value, error in read_json_lines(file)
    )
    return _collect(source, file, lines, unit="line", strict=strict)


def read_json_lines(file: Path) -> Iterator[tuple[int, Any, str | None]]:
    """The non-blank lines of a JSONL file, decoded: `(number, value, None)` for a line
    that is JSON, `(number, None, what is wrong)` for one that is not UTF-8 or not JSON.

    Numbers are 1-based; CRLF endings and a byte-order mark are allowed.

    Raises:
        DatasetError: the file does not exist, is a directory, or cannot be read.
    """
    if not file.is_file():
        what = (
            f"is a directory (for a Hugging Face dataset folder, use hf:{file})"
            if file.is_dir()
            else "does not exist"
        )
        raise DatasetError(f"dataset file {str(file)!r} {what}")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read dataset file {str(file)!r}: {error.strerror}") from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = raw[error.start : error.start + 1].hex()
            yield number, None, f"not UTF-8 (byte 0x{bad} at column {error.start + 1})"
            continue
        try:
            yield number, json.loads(text), None
        except json.JSONDecodeError as error:
            yield number, None, f"not valid JSON: {error.msg} at column {error.colno}"


def _collect(
    source: DatasetSource | ProceduralSource,
    path: Path,
    parsed: Iterable[tuple[int, _Parsed]],
    *,
    unit: Literal["line", "row"],
    strict: bool,
) -> ProblemDataset:
    """Records for the good lines (rows), issues for the bad ones, in order."""
    records: list[ProblemRecord] = []
    issues: list[DatasetIssue] = []
    seen: set[str] = set()
    for index, (where, result) in enumerate(parsed):
        if isinstance(result, str):
            issue = DatasetIssue(str(source), where, result, unit)
            if strict:
                raise DatasetError(str(issue))
            logger.warning("skipped %s", issue)
            issues.append(issue)
            continue
        problem, answer, meta = result
        session_id = session_id_for(problem)
        if session_id in seen:  # the same problem again: its own, equally stable, session
            session_id = f"{session_id}-{index}"
        seen.add(session_id)
        line = where if unit == "line" else 0
        records.append(ProblemRecord(index, problem, answer, session_id, line, meta))
    if not records:
        if issues:
            raise DatasetError(
                f"no usable problem in {source}: all {len(issues)} {unit}s are bad "
                f"(first: {issues[0]})"
            )
        if unit == "row":
            raise DatasetError(f"Hugging Face dataset {str(source)!r} has no rows")
        raise DatasetError(f"dataset file {str(source)!r} is empty")
    return ProblemDataset(path, records, issues, source)


MAX_ANSWER_CHARS = 1_000
"""Longest gold answer accepted: MATH500's longest is 53 characters, and math-verify
spends its whole 5 s timeout on a parse of ~10,000."""


def _parse_row(row: object, problem_field: str, answer_field: str) -> _Parsed:
    """A Hugging Face row, checked like a line. Its meta is made JSON-safe (dates, bytes,
    images become text) because it travels in the session log."""
    parsed = _parse_value(row, problem_field, answer_field)
    if isinstance(parsed, str):
        return parsed
    problem, answer, meta = parsed
    return problem, answer, json.loads(json.dumps(meta, default=str))


def _parse_value(value: object, problem_field: str, answer_field: str) -> _Parsed:
    """The problem, answer and meta of one parsed object, or what is wrong with it."""
    if not isinstance(value, dict):
        return f"expected a JSON object, got {json_type(value)}"
    fields: list[str] = []
    for name in (problem_field, answer_field):
        if name not in value:
            return f"no {name!r} field (fields: {', '.join(sorted(value)) or 'none'})"
        content = value[name]
        if isinstance(content, int | float) and not isinstance(content, bool):
            content = str(content)
        if not isinstance(content, str):
            return f"{name!r} must be a string, got {json_type(content)}"
        if not content.strip():
            return f"{name!r} is empty"
        fields.append(content.strip())
    gold = _gold_answer(fields[1], answer_field)
    if isinstance(gold, str):
        return gold
    answer, rationale = gold
    meta = {k: v for k, v in value.items() if k not in (problem_field, answer_field)}
    if rationale is not None:
        meta[answer_field] = rationale  # the reference solution `journey expand` reads
    return fields[0], answer, meta


def _gold_answer(content: str, answer_field: str) -> tuple[str, str | None] | str:
    """The gold answer an answer field gives and the GSM8K rationale it came from (None
    for a plain answer), or what is wrong with it.

    A rationale's gold is its `####` answer. One without that line is refused when its
    calculator annotations show what it is, rather than graded as a whole (it would
    never match); any answer too long to grade is refused too.
    """
    split = split_answer_line(content)
    rationale: str | None = None
    if split is not None:
        gold, rationale = split[1], content
        if not gold:
            return f"{answer_field!r} has an empty '####' line: no gold answer"
    else:
        gold = content
        annotations = calculator_annotations(content)
        if annotations:
            return (
                f"{answer_field!r} is a GSM8K-style rationale (calculator annotation "
                f"{annotations[0]}) without the '#### N' line that marks its gold answer"
            )
    if len(gold) > MAX_ANSWER_CHARS:
        hint = "" if rationale is not None else "; a rationale must end in a '#### N' line"
        return (
            f"{answer_field!r} is {len(gold):,} characters long; a gold answer over "
            f"{MAX_ANSWER_CHARS:,} is refused (the grader would time out on it){hint}"
        )
    return gold, rationale


def json_type(value: object) -> str:
    """How a JSON value's type is named in an issue: `an object`, `null`, `a number`..."""
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
