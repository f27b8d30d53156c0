"""What a training run did, saved beside the weights it wrote (`journey-train.json`).

Free of torch, so what a model was trained on can be read wherever a model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["SUMMARY_FILE", "TrainingSummary", "load_summary"]

SUMMARY_FILE = "journey-train.json"


class TrainingSummary(BaseModel):
    """What a training run did (saved as `journey-train.json` beside the weights)."""

    kind: str
    model: str
    """The spec it started from."""
    data: str
    """The data file; an absolute path since 2026-12-05, as given before."""
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


def load_summary(directory: Path) -> TrainingSummary | None:
    """The summary of the training that wrote `directory`; None where none did (a base
    model) or its summary cannot be read."""
    try:
        text = (directory / SUMMARY_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        return TrainingSummary.model_validate_json(text)
    except ValueError:
        return None
