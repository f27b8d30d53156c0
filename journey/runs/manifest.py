"""Run manifests: what a resumable job was started with, checked when it resumes.

Every resumable job keeps one JSON manifest beside what it writes:

    journey synth    RUN/run.json
    journey eval     OUT/eval.json
    journey pairs    pairs.sampling.json, beside OUT (pairs.jsonl)
    journey smooth   RUN/smooth.json

A manifest is one flat object, so readers find `model`, `models` or `strategy` at
its top: the job's kind (`command`), when and by which journey version it was
started, the settings of that first run, and under `resumed` one entry per later run
(when, its settings, and the changes `--force` let through). A job describes a run
as a `Manifest` (its kind, its settings, which of them may change) and `open`s it:
a resume whose settings differ from those of the latest run recorded is refused in
one line naming each change, unless forced; then the run is recorded. The file is
replaced atomically (`write_atomic`), so a kill never leaves half a manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from journey import __version__
from journey.errors import ConfigError
from journey.runs.files import write_atomic

__all__ = [
    "DEFAULT_REMEDY",
    "KIND_KEY",
    "Manifest",
    "ManifestEntry",
    "ManifestFile",
    "SettingChange",
    "absent_as_default",
    "read_manifest",
    "setting_changes",
]

KIND_KEY = "command"
"""The manifest entry naming the job (`synth`, `eval`...), as `journey KIND` runs it."""

DEFAULT_REMEDY = "use the same settings, another --out, or --force to mix them"
"""What a refused resume tells the user to do, unless the job says otherwise."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SettingChange:
    """A setting a resume would change: its name, the recorded value and this run's.

    A setting inside a mapping is named by its path (`models.policy`).
    """

    name: str
    recorded: Any
    wanted: Any

    def __str__(self) -> str:
        if self.name == KIND_KEY:
            return f"'journey {self.recorded}', not 'journey {self.wanted}'"
        return f"{self.name}: {self.recorded!r} -> {self.wanted!r}"


def setting_changes(
    recorded: Mapping[str, Any], wanted: Mapping[str, Any], *, prefix: str = ""
) -> list[SettingChange]:
    """The settings of `wanted` whose recorded value differs, in `wanted`'s order.

    Two mappings are compared key by key (the keys of `wanted`), so that a change names
    what changed inside them (`models.policy`), not the whole mapping.
    """
    changes: list[SettingChange] = []
    for key, value in wanted.items():
        found = recorded.get(key)
        name = f"{prefix}{key}"
        if isinstance(found, Mapping) and isinstance(value, Mapping):
            changes += setting_changes(found, value, prefix=f"{name}.")
        elif found != value:
            changes.append(SettingChange(name, found, value))
    return changes


class ManifestEntry(BaseModel):
    """A later run of a job, as its manifest's `resumed` list keeps it; the settings are
    its extra fields."""

    model_config = ConfigDict(extra="allow")

    at: str | None = None
    forced: list[str] | None = None
    """The changes `--force` let through, as the refusal would have named them."""

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_record(self) -> dict[str, Any]:
        """The entry as the manifest writes it: when, what was forced, the settings."""
        head = {"at": self.at, "forced": self.forced}
        return {**{k: v for k, v in head.items() if v is not None}, **self.settings}


class ManifestFile(BaseModel):
    """A manifest as it lies on disk; the first run's settings are its extra fields.

    Jobs that share a manifest file add their own entries (`journey merge` its
    `merged` list); they are kept as they are.
    """

    model_config = ConfigDict(extra="allow")

    created: str | None = None
    journey_version: str | None = None
    command: str | None = None
    """The job's kind; a manifest written before kinds were recorded has none."""
    resumed: list[ManifestEntry] = Field(default_factory=list)

    @classmethod
    def started(cls, record: Mapping[str, Any]) -> ManifestFile:
        """A first run's manifest: `record` (its kind and settings), stamped with when and
        by which journey version it began."""
        return cls.model_validate({"created": _now(), "journey_version": __version__, **record})

    @property
    def settings(self) -> dict[str, Any]:
        """The settings of the first run (and any other entry a job added)."""
        return dict(self.model_extra or {})

    def add_entry(self, key: str, entry: Mapping[str, Any]) -> None:
        """Append `entry` to the list a job keeps under `key` (`journey merge`'s `merged`)."""
        setattr(self, key, [*self.settings.get(key, []), dict(entry)])

    @property
    def current(self) -> dict[str, Any]:
        """The settings of the latest run recorded: what a resume must match."""
        return self.resumed[-1].settings if self.resumed else self.settings

    def to_json(self) -> str:
        """The file's text: stamps and kind first, settings, then the later runs."""
        stamps = {"created": self.created, "journey_version": self.journey_version}
        head = {k: v for k, v in {**stamps, KIND_KEY: self.command}.items() if v is not None}
        resumed = [entry.as_record() for entry in self.resumed]
        text = {**head, **self.settings, **({"resumed": resumed} if resumed else {})}
        return json.dumps(text, indent=2) + "\n"


def read_manifest(path: Path) -> ManifestFile | None:
    """The manifest at `path`, or None when there is none.

    Raises:
        ConfigError: The file is not a readable JSON object.
    """
    if not path.is_file():
        return None
    try:
        return ManifestFile.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
        raise ConfigError(f"cannot read {path}: {reason}") from None


Describe = Callable[[SettingChange], str]
"""Words one change for the refusal (`str` by default: `name: old -> new`)."""


def absent_as_default(defaults: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `Manifest.read_as_today` from today's default settings: a setting the recorded
    run lacks (added to journey since), at the top or inside a mapping, reads as today's
    default, which is what that run did. A recorded value is never replaced."""
    known: dict[str, Any] = json.loads(json.dumps(dict(defaults)))

    def read(recorded: dict[str, Any]) -> dict[str, Any]:
        return _filled(recorded, known)

    return read


def _filled(recorded: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`recorded` with each key it lacks taken from `defaults`, mappings merged alike."""
    merged = {**defaults, **recorded}
    for key, value in recorded.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            merged[key] = _filled(value, default)
    return merged


@dataclass(frozen=True)
class Manifest:
    """One run of a resumable job: its kind and settings, as its manifest records them."""

    kind: str = field(metadata={"help": "The job, as `journey KIND` runs it (synth, eval...)."})
    settings: Mapping[str, Any] = field(
        metadata={"help": "Everything recorded about the run, in the order it is written."}
    )
    free: Collection[str] = field(
        default=frozenset(),
        metadata={"help": "Settings a resume may change (concurrency, the dataset file...)."},
    )
    read_as_today: Callable[[dict[str, Any]], dict[str, Any]] | None = field(
        default=None,
        metadata={
            "help": "How settings an earlier version recorded read today (a setting added "
            "since takes its default), so that upgrading journey changes no run's settings."
        },
    )

    @property
    def record(self) -> dict[str, Any]:
        """The settings as JSON keeps them (tuples become lists), so that they compare
        equal to what is read back."""
        loaded: dict[str, Any] = json.loads(json.dumps(dict(self.settings)))
        return loaded

    def changes(self, recorded: ManifestFile) -> list[SettingChange]:
        """What differs from the latest run `recorded`: the kind, then each matched setting.

        A manifest that records no kind is taken as this job's (it predates kinds).
        """
        found: list[SettingChange] = []
        if recorded.command is not None and recorded.command != self.kind:
            found.append(SettingChange(KIND_KEY, recorded.command, self.kind))
        matched = {k: v for k, v in self.record.items() if k not in self.free}
        current = recorded.current
        if self.read_as_today is not None:
            current = self.read_as_today(current)
        return found + setting_changes(current, matched)

    def open(
        self,
        path: Path,
        *,
        subject: str,
        force: bool = False,
        remedy: str = DEFAULT_REMEDY,
        describe: Describe = str,
    ) -> list[SettingChange]:
        """Record this run in the manifest at `path`, refusing to resume with other settings.

        A missing manifest is written afresh (`ManifestFile.started`); an existing one
        gets this run appended under `resumed`, with the changes `force` let through.

        Args:
            path: The manifest file.
            subject: Starts the refusal: "<subject> made with other settings (...)".
            force: Resume anyway; the job's results then mix settings.
            remedy: Ends the refusal: what the user can do.
            describe: Words each change in the refusal and the `forced` record.

        Returns:
            The changes forced through (empty when none).

        Raises:
            ConfigError: A setting outside `free`, or the kind, differs from the latest
                run's (without `force`), or the manifest cannot be read.
        """
        recorded = read_manifest(path)
        if recorded is None:
            write_atomic(path, ManifestFile.started({KIND_KEY: self.kind, **self.record}).to_json())
            return []
        changes = self.changes(recorded)
        words = [describe(change) for change in changes]
        if changes and not force:
            raise ConfigError(f"{subject} made with other settings ({'; '.join(words)}); {remedy}")
        entry = {"at": _now(), **({"forced": words} if words else {}), **self.record}
        recorded.resumed.append(ManifestEntry.model_validate(entry))
        write_atomic(path, recorded.to_json())
        return changes
