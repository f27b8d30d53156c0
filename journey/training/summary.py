"""What a training run did, saved beside the weights it wrote (`journey-train.json`).

Free of torch, so what a model was trained on can be read wherever a model is used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = [
    "SUMMARY_FILE",
    "TrainingSummary",
    "UnreadableSummary",
    "file_digest",
    "load_summary",
]

SUMMARY_FILE = "journey-train.json"


class TrainingSummary(BaseModel):
    """What a training run did (saved as `journey-train.json` beside the weights)."""

    kind: str
    model: str
    """The spec it started from."""
    data: str
    """The data file; an absolute path since 2026-12-05, as given before."""
    data_sha256: str | None = None
    """The data file's digest when training read it (since 2026-12-05), so a file
    written over since is known not to be what the model trained on."""
    out: str
    rows: int
    lora: bool
    dtype: str
    device: str
    steps: int
    loss_head: list[float]
    loss_tail: list[float]
    tokens_seen: int
    tokens_per_second: float
    seconds_per_step: float
    wall_seconds: float
    config: dict[str, Any]


class UnreadableSummary(Exception):
    """A `journey-train.json` that is there but cannot be read: what the model trained
    on is unknown, which is not the same as a model journey did not train."""


def load_summary(directory: Path) -> TrainingSummary | None:
    """The summary of the training that wrote `directory`; None where there is none (a
    model journey did not train).

    Raises:
        UnreadableSummary: the file is there but unreadable or not a summary.
    """
    path = directory / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return TrainingSummary.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UnreadableSummary(f"{path}: {type(error).__name__}") from error


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
