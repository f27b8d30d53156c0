"""What a model was trained on, and which problems of an evaluation it has seen.

An accuracy measured on problems the model trained on is not a held-out accuracy, and
nothing in the figure says so: docs/benchmarks.md once called 24 problems "not trained
on" when 8 of them were training rows. Every `journey train` writes the data file and
the model it started from beside the weights (`journey-train.json`), so the data of
every training that led to a model is found by following those starts back to a model
journey did not train. A problem is seen when its text (whitespace aside) stands in a
row's prompt: every export writes the problem verbatim into the user turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from journey.agents.backends.spec import parse_model_spec
from journey.errors import JourneyError
from journey.training.summary import TrainingSummary, load_summary

__all__ = ["TrainingData", "overlap_lines", "seen_problems", "training_data"]


@dataclass(frozen=True)
class TrainingData:
    """The data files of every training that led to a model, newest first."""

    files: tuple[Path, ...] = ()
    missing: tuple[str, ...] = ()
    """What could not be read, so its rows are unknown: data files a training recorded
    that are gone, or a model folder that is not there."""


def training_data(spec: str) -> TrainingData:
    """The data every `journey train` run that led to the model `spec` trained on; empty
    for a model journey did not train (a base model, a server)."""
    files: list[Path] = []
    missing: list[str] = []
    visited: set[Path] = set()
    directory = _trained_directory(spec)
    while directory is not None and directory not in visited:
        visited.add(directory)
        if not directory.is_dir():
            missing.append(str(directory))
            break
        summary = load_summary(directory)
        if summary is None:
            break
        found = _data_file(summary, directory)
        if found is None:
            missing.append(summary.data)
        else:
            files.append(found)
        directory = _trained_directory(summary.model)
    return TrainingData(tuple(files), tuple(missing))


def seen_problems(problems: Sequence[str], files: Sequence[Path]) -> list[str]:
    """The problems (in their order) whose text stands in a prompt of a row of `files`."""
    asked = "\x00".join(_normal(text) for file in files for text in _prompt_texts(file))
    return [problem for problem in problems if _normal(problem) in asked]


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
        lost = ", ".join(data.missing)
        lines.append(f"training data of {spec} not found ({lost}): not checked for overlap")
    return lines


def _trained_directory(spec: str) -> Path | None:
    """The folder of a local model spec (`hf:DIR` or a directory); None for any other."""
    try:
        parsed = parse_model_spec(spec)
    except JourneyError:
        return None
    if parsed.backend != "hf":
        return None
    return Path(parsed.target).expanduser().resolve()


def _data_file(summary: TrainingSummary, directory: Path) -> Path | None:
    """The recorded data file, found again. Before 2026-12-05 the path was recorded as
    given, relative to the folder training ran in: that folder is the model's own less
    `out` when `out` was relative too, else the current one is the best guess."""
    data = Path(summary.data).expanduser()
    if data.is_absolute():
        return data if data.is_file() else None
    out = Path(summary.out)
    candidates = [Path.cwd() / data]
    if not out.is_absolute() and directory.parts[-len(out.parts) :] == out.parts:
        candidates.insert(0, Path(*directory.parts[: -len(out.parts)]) / data)
    return next((path for path in candidates if path.is_file()), None)


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


def _normal(text: str) -> str:
    return " ".join(text.split())
