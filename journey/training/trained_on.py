"""What a model was trained on, and which problems of an evaluation it has seen.

An accuracy measured on problems the model trained on is not a held-out accuracy, and
nothing in the figure says so: docs/benchmarks.md once called 24 problems "not trained
on" when 8 of them were training rows. Every `journey train` writes the data file (with
its digest) and the model it started from beside the weights (`journey-train.json`), so
the data of every training that led to a model is found by following those starts back
to a model journey did not train. A problem is seen when its text (whitespace aside, and
not as part of a longer word or number) stands in a row's prompt: every export writes
the problem verbatim into the user turn.

What cannot be followed is unknown, never "trained on nothing": a model folder that is
gone, a spec that does not parse (an evaluation that recorded none), a summary that
cannot be read, a data file gone, unreadable or written over since. A model that is not
a folder (the embedded model, a server, a function) is one journey did not train: what a
server's model trained on is not visible from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from journey.agents.backends.spec import parse_model_spec
from journey.errors import JourneyError
from journey.training.summary import (
    TrainingSummary,
    UnreadableSummary,
    file_digest,
    load_summary,
)

__all__ = ["TrainingData", "absolute_spec", "overlap_lines", "seen_problems", "training_data"]

_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class TrainingData:
    """The data files of every training that led to a model, newest first."""

    files: tuple[Path, ...] = ()
    missing: tuple[str, ...] = ()
    """What could not be read, each as ``what: why``, so its rows are unknown."""


class _Unknown(Exception):
    """A link of the chain that cannot be followed; its message says which and why."""


def training_data(spec: str) -> TrainingData:
    """The data every `journey train` run that led to the model `spec` trained on; empty
    for a model journey did not train (see the module docstring)."""
    files: list[Path] = []
    missing: list[str] = []
    visited: set[Path] = set()
    try:
        directory = _model_folder(spec, relative_to=Path.cwd())
        while directory is not None and directory not in visited:
            visited.add(directory)
            summary = _summary(directory)
            if summary is None:
                break
            ran_in = _where_training_ran(summary, directory)
            try:
                files.append(_data_file(summary, ran_in))
            except _Unknown as why:
                missing.append(str(why))
            directory = _model_folder(summary.model, relative_to=ran_in)
    except _Unknown as why:
        missing.append(str(why))
    return TrainingData(tuple(files), tuple(missing))


def absolute_spec(spec: str) -> str:
    """`spec` with a relative model folder made absolute, so the start a summary records
    is found again from any folder; any other spec as given."""
    try:
        parsed = parse_model_spec(spec)
    except JourneyError:
        return spec
    folder = Path(parsed.target).expanduser()
    if not parsed.target or folder.is_absolute() or not folder.is_dir():
        return spec
    return spec.replace(parsed.target, str(folder.resolve()), 1)


def seen_problems(problems: Sequence[str], files: Sequence[Path]) -> list[str]:
    """The problems (in their order) whose text stands in a prompt of a row of `files`.

    Raises:
        OSError, UnicodeDecodeError: a file cannot be read (`training_data` has read
            each file it returns once already).
    """
    asked = "\x00".join(_normal(text) for file in files for text in _prompt_texts(file))
    return [problem for problem in problems if _stands_in(_normal(problem), asked)]


def overlap_lines(spec: str, problems: Sequence[str]) -> list[str]:
    """What to tell the user about the problems `spec` trained on (nothing when none)."""
    data = training_data(spec)
    lines = []
    seen = seen_problems(problems, data.files) if data.files else []
    if seen:
        where = ", ".join(str(file) for file in data.files)
        lines.append(
            f"{len(seen)} of {len(problems)} problems stand in the training data of {spec} "
            f"({where}): their accuracy is not held out"
        )
    if data.missing:
        lost = "; ".join(data.missing)
        lines.append(f"training data of {spec} unknown ({lost}): not checked for overlap")
    return lines


def _model_folder(spec: str, *, relative_to: Path) -> Path | None:
    """The folder of a model given as one (`hf:DIR`, a directory, `vllm:DIR`); None for
    a model that is not a folder. A relative folder is taken from `relative_to`.

    Raises:
        _Unknown: the spec does not parse, or names a folder that is not there.
    """
    recorded = relative_to / Path(spec).expanduser()
    if ":" not in spec and recorded.is_dir():  # a bare folder, relative to where it ran
        return recorded.resolve()
    try:
        parsed = parse_model_spec(spec)
    except JourneyError as error:
        # A bare folder that is gone no longer parses as one: unknown, as for "?" (an
        # evaluation that recorded no model).
        raise _Unknown(f"model {spec}: not a folder here, nor a model spec") from error
    if parsed.backend not in ("hf", "vllm"):
        return None
    if not parsed.target:
        raise _Unknown(f"model {spec}: names no model folder")
    folder = relative_to / Path(parsed.target).expanduser()
    if folder.is_dir():
        return folder.resolve()
    if parsed.backend == "vllm" and not Path(parsed.target).is_absolute():
        return None  # a Hub id served by vLLM: a model journey did not train
    raise _Unknown(f"model folder {folder}: not there")


def _summary(directory: Path) -> TrainingSummary | None:
    try:
        return load_summary(directory)
    except UnreadableSummary as error:
        raise _Unknown(f"training summary {error}") from error


def _where_training_ran(summary: TrainingSummary, directory: Path) -> Path:
    """The folder a training's relative paths are relative to. Before 2026-12-05 they
    were recorded as given: that folder is the model's own less `out` when `out` was
    relative too; else the current one is the best guess."""
    out = Path(summary.out)
    if not out.is_absolute() and directory.parts[-len(out.parts) :] == out.parts:
        return Path(*directory.parts[: -len(out.parts)])
    return Path.cwd()


def _data_file(summary: TrainingSummary, ran_in: Path) -> Path:
    """The recorded data file, found again and checked against its digest.

    Raises:
        _Unknown: the file is gone, unreadable, or not the one the training read.
    """
    data = ran_in / Path(summary.data).expanduser()
    if not data.is_file():
        raise _Unknown(f"{summary.data}: gone")
    try:
        if summary.data_sha256 is not None and file_digest(data) != summary.data_sha256:
            raise _Unknown(f"{data}: written over since the training read it")
        for _ in _prompt_texts(data):
            pass  # readable to its end, so `seen_problems` reads it without a surprise
    except (OSError, UnicodeDecodeError) as error:
        raise _Unknown(f"{data}: unreadable ({type(error).__name__})") from error
    return data


def _prompt_texts(file: Path) -> Iterator[str]:
    """The user turns (or plain prompts) of every readable row of a training file."""
    with file.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # training refuses such a file; nothing here to find
            if isinstance(row, dict):
                yield from _user_texts(row.get("prompt", row.get("messages")))


def _user_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for message in value:
            if isinstance(message, dict) and message.get("role") == "user":
                yield str(message.get("content", ""))


def _stands_in(problem: str, asked: str) -> bool:
    """`problem` in `asked`, not as part of a longer word or number ("12 * 3" is not in
    "12 * 34"); an empty problem is in nothing."""
    if not problem:
        return False
    before = r"(?<!\w)" if _WORD.match(problem[0]) else ""
    after = r"(?!\w)" if _WORD.match(problem[-1]) else ""
    return re.search(before + re.escape(problem) + after, asked) is not None


def _normal(text: str) -> str:
    return " ".join(text.split())
