"""The steps of `journey iterate` and the markers that say a step is done.

Every step of a round (synthesis, an export, a training, pairs, an evaluation) writes a
marker last, once its output is complete: inside its output folder
(`models/journey/iterate-step.json`), or beside its output file
(`exports/journey.step.json`). The marker records the step's *inputs*: its settings,
the model it used and the digests of the files it read. A rerun skips a step whose
marker is there, whose recorded inputs are this run's, and whose outputs exist; any
other step runs again. So deleting a step's output redoes that step alone, and a step
whose inputs changed (a retrained model, an export with new rows) is redone together
with what depends on it, and nothing else.

A trained model is referred to by its spec and its training marker's digest
(`ModelRef`), so a step that used it is redone when the model is trained anew from
other inputs, not when it was merely skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from journey.runs.files import write_atomic

__all__ = ["MARKER_FILE", "ModelRef", "Step", "StepMarker", "file_digest", "inputs_digest"]

MARKER_FILE = "iterate-step.json"
"""A step's marker inside the folder it writes."""


def inputs_digest(inputs: Mapping[str, Any]) -> str:
    """A short, stable digest of JSON-able inputs (key order does not matter)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (first 16 hex digits); None when it is missing."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ModelRef:
    """A model a step uses: its spec, and the digest of the training that made it."""

    spec: str
    trained: str | None = None
    """The training marker's digest; None for a model the recipe names."""

    def record(self) -> dict[str, Any]:
        return {"spec": self.spec, **({"trained": self.trained} if self.trained else {})}


class StepMarker(BaseModel):
    """What a finished step wrote last: its name, inputs and result."""

    step: str
    digest: str
    inputs: dict[str, Any]
    result: dict[str, Any] = Field(default_factory=dict)
    finished: str = ""


@dataclass(frozen=True)
class Step:
    """One step of a round: where its marker goes, what it read, what it must leave."""

    name: str
    """How the log names it: `round 1 · train journey`."""
    marker: Path
    inputs: Mapping[str, Any]
    outputs: Sequence[Path] = field(default=())
    """Files or folders that must exist for the step to count as done."""

    @property
    def digest(self) -> str:
        return inputs_digest(self.inputs)

    def done(self) -> StepMarker | None:
        """The marker of this step with these inputs, if its outputs are all there."""
        if not self.marker.is_file() or not all(p.exists() for p in self.outputs):
            return None
        try:
            found = StepMarker.model_validate_json(self.marker.read_bytes())
        except (OSError, ValidationError):
            return None  # a marker that cannot be read says nothing: the step runs again
        return found if found.digest == self.digest else None

    def clear(self) -> None:
        """Remove a stale marker before the step runs again (a kill then leaves none)."""
        self.marker.unlink(missing_ok=True)

    def finish(self, result: Mapping[str, Any]) -> StepMarker:
        """Write the marker: the step is done."""
        marker = StepMarker(
            step=self.name,
            digest=self.digest,
            inputs=json.loads(json.dumps(dict(self.inputs), default=str)),
            result=dict(result),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_atomic(self.marker, marker.model_dump_json(indent=2) + "\n")
        return marker
