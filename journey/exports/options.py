"""What `journey export` writes and keeps: its options, and the dataset card beside a file."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from journey import __version__
from journey.errors import ConfigError, DatasetError
from journey.exports.rows import DEFAULT_INSTRUCTION, UnknownSteps
from journey.longthought.writer import LongThoughtOptions

__all__ = [
    "LAYOUTS",
    "TRANSCRIPTS",
    "ExportCard",
    "ExportFormat",
    "ExportOptions",
    "card_path",
    "load_card",
]


class ExportFormat(StrEnum):
    SFT = "sft"
    SHORTCUT = "shortcut"
    DPO = "dpo"
    PRM = "prm"
    REVISION = "revision"
    """A critique of a step and the accepted sibling answering it (`exports.revisions`)."""


LAYOUTS = ("prompt-completion", "messages")
TRANSCRIPTS = ("smoothed", "draft")


@dataclass
class ExportOptions:
    """What to export and which sessions to keep."""

    format: ExportFormat | str = field(metadata={"help": "sft, shortcut, dpo, prm or revision."})
    layout: str = field(
        default="prompt-completion",
        metadata={
            "help": "sft/shortcut rows: prompt-completion (TRL trains on the completion only) "
            "or messages (plain TRL trains on every token; 'journey train' on the last reply)."
        },
    )
    only_verified: bool | None = field(
        default=None,
        metadata={
            "help": "Keep only solved sessions (default: on for sft, shortcut, dpo; off for prm)."
        },
    )
    same_problems: bool = field(
        default=True,
        metadata={
            "help": "sft and shortcut keep only sessions with both a long thought and a "
            "shortcut, and judge --max-tokens on the long thought, so both exports share "
            "their problems."
        },
    )
    min_reflections: int = field(
        default=0, metadata={"help": "Fewest reflections a session needs."}
    )
    min_backtracks: int = field(default=0, metadata={"help": "Fewest backtracks a session needs."})
    max_violations: int | None = field(
        default=None,
        metadata={"help": "Skip sessions with more protocol violations than this."},
    )
    keywords: tuple[str, ...] = field(
        default=(), metadata={"help": "Regexes the transcript must all match (case-insensitive)."}
    )
    max_tokens: int | None = field(
        default=None, metadata={"help": "Skip rows longer than this many tokens."}
    )
    limit: int | None = field(default=None, metadata={"help": "Write at most this many rows."})
    max_pairs_per_session: int = field(default=4, metadata={"help": "DPO pairs kept per session."})
    instruction: str = field(
        default=DEFAULT_INSTRUCTION, metadata={"help": "Appended to the problem in the user turn."}
    )
    tokenizer: str = field(
        default="heuristic",
        metadata={"help": "How --max-tokens counts: heuristic (words, chars/4) or embedded."},
    )
    transcript: str = field(
        default="smoothed",
        metadata={
            "help": "sft: smoothed (the rewrite 'journey smooth' accepted, where there is one; "
            "the draft elsewhere) or draft."
        },
    )
    prm_unknown: UnknownSteps | str = field(
        default=UnknownSteps.DROP,
        metadata={
            "help": "prm: a step whose label is unknown drops its row (drop), ends it before "
            "the step (skip), or stays with a null label (keep)."
        },
    )
    credit_verified_path: bool = field(
        default=False,
        metadata={
            "help": "Label steps with no evidence (unknown) on the path to a verified answer "
            "correct (source verified_path). Off: such steps stay unknown."
        },
    )
    writer: LongThoughtOptions = field(
        default_factory=LongThoughtOptions, metadata={"help": "How long thoughts are written."}
    )
    allow_empty: bool = field(
        default=False, metadata={"help": "Write the file and its card even when no row is left."}
    )

    def __post_init__(self) -> None:
        self.format = _choice(ExportFormat, self.format, "export format")
        self.prm_unknown = _choice(UnknownSteps, self.prm_unknown, "--prm-unknown")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {self.layout!r}; choose {' or '.join(LAYOUTS)}")
        if self.transcript not in TRANSCRIPTS:
            raise ConfigError(
                f"unknown transcript {self.transcript!r}; choose {' or '.join(TRANSCRIPTS)}"
            )
        if self.only_verified is None:
            self.only_verified = not self.step_rows
        for name in ("min_reflections", "min_backtracks", "max_violations"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} must be 0 or more, got {value!r}")
        for name in ("max_tokens", "limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value!r}")
        if self.max_pairs_per_session < 1:
            raise ConfigError(
                f"max_pairs_per_session must be at least 1, got {self.max_pairs_per_session!r}"
            )
        if self.tokenizer not in ("heuristic", "embedded"):
            raise ConfigError(f"unknown tokenizer {self.tokenizer!r}; choose heuristic or embedded")
        for pattern in self.keywords:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ConfigError(f"bad keyword regex {pattern!r}: {error}") from None

    @property
    def step_rows(self) -> bool:
        """prm and revision: rows of single steps, which a session that found no answer
        gives as well, which need no accepted path and hold no long thought."""
        return self.format in (ExportFormat.PRM, ExportFormat.REVISION)

    @property
    def has_layout(self) -> bool:
        """The formats whose rows are a conversation, written in `layout`."""
        return self.pairs_texts or self.format is ExportFormat.REVISION

    @property
    def pairs_texts(self) -> bool:
        """sft and shortcut: the formats held to the same problems."""
        return self.format in (ExportFormat.SFT, ExportFormat.SHORTCUT)

    def filters(self) -> dict[str, Any]:
        """The options that choose sessions, rows and labels, as the card records them."""
        record = asdict(self)
        for key in ("format", "layout", "instruction", "writer", "allow_empty"):
            record.pop(key)
        record["keywords"] = list(self.keywords)
        record["prm_unknown"] = str(self.prm_unknown)
        return record


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], value: str, what: str) -> _E:
    """A name from the command line, checked against an enum."""
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(member.value for member in kind)
        raise ConfigError(f"unknown {what} {value!r}; choose one of {names}") from None


class ExportCard(BaseModel):
    """The dataset card written beside an export."""

    file: str
    format: str
    layout: str | None
    rows: int = 0
    sessions_seen: int = 0
    sessions_exported: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    """Sessions not exported, by reason."""
    rows_dropped: dict[str, int] = Field(default_factory=dict)
    """Rows of exported sessions left out, by reason (a PRM path with an unknown step...)."""
    dropped_upstream: dict[str, int] = Field(default_factory=dict)
    """What the runs dropped before any session could be exported, by reason: expansion
    attempts rejected by their checks (`journey expand`; in total and by kind, an
    attempt counting under each of its kinds) in the sessions read, and the problems
    an expand run left out for want of a reference solution (from its `run.json`)."""
    labels: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Step labels in the rows, by source then label: sft and shortcut count the path to
    the answer, dpo the chosen path and the rejected branch, prm every labelled step."""
    transcripts: dict[str, int] = Field(default_factory=dict)
    """sft: long thoughts exported as the smoothed rewrite or as the draft."""
    wrong_turns_left_out: dict[str, int] = Field(default_factory=dict)
    """sft, tree walks: failed branches of the exported long thoughts that the walk looked
    at and did not enter, by why: "no reason given" (`wrong_turns` reasoned or followed:
    its reflection could give no reason, only doubt a rejected answer or say a step is
    wrong), "correction not followed" (followed: the right value it names is not what the
    next step uses), "correction already written" (the step had its one).
    Branches past the per-step cap are not looked at. A smoothed long thought counts
    none: the rewrite is of the default draft, which these options do not shape."""
    rollouts: dict[str, int] = Field(default_factory=dict)
    """prm: steps carrying a rollout estimate (`journey label`), by the judge that made it."""
    writer: dict[str, Any] = Field(default_factory=dict)
    """How the long thoughts were written (policy reasoning, tree-walk trials)."""
    source_runs: list[str] = Field(default_factory=list)
    strategies: list[str] = Field(default_factory=list)
    strategy_settings: dict[str, list[Any]] = Field(default_factory=dict)
    """The exported sessions' strategy settings, as their `problem_posed` recorded them
    (beam: width, K kept per depth, full tree, the walk's trials...): each value seen."""
    models: dict[str, list[str]] = Field(default_factory=dict)
    """Model specs per role, from `run.json` and the sessions' `problem_posed` events."""
    filters: dict[str, Any] = Field(default_factory=dict)
    held_out: dict[str, Any] | None = None
    """The evaluation set whose problems were left out (source, how many problems); the
    sessions it removed count under `skipped["held out"]`."""
    instruction: str | None = None
    session_ids: list[str] = Field(default_factory=list)
    """The sessions that gave rows, in file order."""
    created: str = ""
    journey_version: str = __version__


def card_path(out: Path) -> Path:
    """Where the card of an export goes: `sft.jsonl` → `sft.card.json`."""
    return out.with_name(f"{out.stem}.card.json")


def load_card(path: Path) -> ExportCard:
    """Read an export's card back."""
    try:
        return ExportCard.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        raise DatasetError(f"cannot read the dataset card {str(path)!r}: {error}") from None
