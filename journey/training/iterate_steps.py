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

Markers are relocatable: a path inside the iteration's folder is recorded as
`{out}/...`, so a copied folder (the equal-tokens comparison starts from a copy) skips
what its copy did, and its models are its own, not the original's. A marker written
before that, with the folder spelt out, still counts and is rewritten when read; the
steps that used a model it names then run once more, and resume from their own
records (an evaluation's answers, a synthesis's sessions) without redoing them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from journey.runs.files import write_atomic

__all__ = [
    "MARKER_FILE",
    "OUT",
    "ModelRef",
    "Step",
    "StepMarker",
    "file_digest",
    "inputs_digest",
    "only_more_problems",
]

MARKER_FILE = "iterate-step.json"
"""A step's marker inside the folder it writes."""

OUT = "{out}"
"""How a marker spells the iteration's folder."""


def inputs_digest(inputs: Mapping[str, Any]) -> str:
    """A short, stable digest of JSON-able inputs (key order does not matter)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def only_more_problems(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether `wanted` differs from `recorded` only by a larger `dataset.limit`: the same
    problems and more, so a synthesis's sessions are still the round's (a long synthesis
    done in parts). A smaller limit or any other change is other work."""
    old, new = recorded.get("dataset"), wanted.get("dataset")
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return False
    if {**recorded, "dataset": None} != {**wanted, "dataset": None}:
        return False
    if {**old, "limit": None} != {**new, "limit": None}:
        return False
    before, after = old.get("limit"), new.get("limit")
    if not isinstance(before, int):
        return False  # every problem already: a larger limit is none
    return after is None or (isinstance(after, int) and after >= before)


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
    """When the step finished; empty in the marker of a step that began and has not."""


@dataclass(frozen=True)
class Step:
    """One step of a round: where its marker goes, what it read, what it must leave."""

    name: str
    """How the log names it: `round 1 · train journey`."""
    marker: Path
    inputs: Mapping[str, Any]
    outputs: Sequence[Path] = field(default=())
    """Files or folders that must exist for the step to count as done."""
    out: Path | None = None
    """The iteration's folder, spelt `{out}` in the marker; None: paths as they are."""
    work: Sequence[Path] = field(default=())
    """What the step resumes from (a synthesis run, an evaluation's folder): removed
    when a run with other inputs left it, so no other model's answers are resumed."""
    keeps_work: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None = None
    """Whether work left by a run with other inputs (those recorded, these wanted) is
    still this step's to resume (`only_more_problems`); None: never."""

    @property
    def digest(self) -> str:
        return inputs_digest(self._relocated(self.inputs))

    def done(self) -> StepMarker | None:
        """The marker of this step with these inputs, if its outputs are all there."""
        if not all(p.exists() for p in self.outputs):
            return None
        found = self._read()
        if found is None or not found.finished:
            return None  # none, or one that says the step began: not done
        if found.digest == self.digest:
            return found.model_copy(update={"result": self._placed(found.result)})
        if self._folder is not None and found.digest == inputs_digest(self.inputs):
            return self._write(found.result, found.finished)  # written before {out}
        return None

    def begin(self) -> None:
        """Mark the step begun with these inputs, before it runs.

        Work a run with other inputs left (its marker says so, finished or begun) is
        removed first: a synthesis or an evaluation would otherwise resume it, and hand
        another model's answers on as this one's. Work of these inputs, left by a killed
        run, stays to be resumed; so does work no marker speaks for, and work that
        `keeps_work` says is still this step's.
        """
        found = self._read()
        same = {self.digest} if self._folder is None else {self.digest, inputs_digest(self.inputs)}
        kept = found is not None and self._keeps(found)
        if found is not None and found.digest not in same and not kept:  # (2nd: before {out})
            for path in self.work:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        self._write({}, finished="")

    def _keeps(self, found: StepMarker) -> bool:
        if self.keeps_work is None:
            return False
        wanted = json.loads(json.dumps(self._relocated(self.inputs), default=str))
        return self.keeps_work(found.inputs, wanted)

    def _read(self) -> StepMarker | None:
        """The marker as it lies, or None (a marker that cannot be read says nothing)."""
        try:
            return StepMarker.model_validate_json(self.marker.read_bytes())
        except (OSError, ValidationError):
            return None

    def finish(self, result: Mapping[str, Any]) -> StepMarker:
        """Write the marker: the step is done."""
        return self._write(result, datetime.now(UTC).isoformat(timespec="seconds"))

    def _write(self, result: Mapping[str, Any], finished: str) -> StepMarker:
        """Write the marker relocatable; return it as this folder reads it."""
        marker = StepMarker(
            step=self.name,
            digest=self.digest,
            inputs=json.loads(json.dumps(self._relocated(self.inputs), default=str)),
            result=self._relocated(json.loads(json.dumps(dict(result), default=str))),
            finished=finished,
        )
        write_atomic(self.marker, marker.model_dump_json(indent=2) + "\n")
        return marker.model_copy(update={"result": self._placed(marker.result)})

    @property
    def _folder(self) -> str | None:
        """The folder as paths inside it start; None when they start with no folder."""
        return None if self.out is None or str(self.out) in ("", ".") else str(self.out)

    def _relocated(self, value: Any) -> Any:
        if self._folder is None:
            return value
        as_json = json.loads(json.dumps(value, default=str))  # Paths as the digest spells them
        return _replaced(as_json, _spelt(self._folder), OUT)

    def _placed(self, value: Any) -> Any:
        return value if self._folder is None else _replaced(value, re.escape(OUT), self._folder)


def _spelt(folder: str) -> str:
    """A pattern for `folder` as a whole path or a path's start, never another name's."""
    return rf"(?<![\w./-]){re.escape(folder)}(?=/|$)"


def _replaced(value: Any, pattern: str, replacement: str) -> Any:
    """`value` (JSON-like) with `pattern` replaced in every string, keys included."""
    if isinstance(value, str):
        return re.sub(pattern, lambda _: replacement, value)
    if isinstance(value, Mapping):
        return {
            _replaced(k, pattern, replacement): _replaced(v, pattern, replacement)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_replaced(item, pattern, replacement) for item in value]
    return value
