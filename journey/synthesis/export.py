"""`journey export`: finished sessions of one or more runs as a training set, with a card.

Formats (rows built in `export_rows`):

- `sft`: the problem and the long thought (`transcript.md`), the journey.
- `shortcut`: the problem and the accepted path alone (`shortcut.md`).
- `dpo`: preference pairs from sibling branches of each tree.
- `prm`: step-level correct/incorrect labels along each labelled path of each tree.

**Same problems.** By default (`same_problems`) a session is eligible for `sft` *and*
`shortcut` only when it has both a long thought and a shortcut, every filter is judged
on the session (its transcript, its counts), and `max_tokens` is checked on the longer
of the two rows (the long thought). So `sft` and `shortcut` exports of the same runs
with the same filters hold exactly the same problems, as the seed's comparison needs.

A session that cannot be read (no `session_ended`, a tree or transcript missing or
unreadable) is skipped and counted under its reason; it never stops the export. A
session id met in two runs is exported once (the first run given wins).

The rows go to `FILE` (written to a temporary name and renamed), and a dataset card
to `FILE` with the suffix `.card.json` (`sft.jsonl` → `sft.card.json`): the counts,
format, layout, source runs, strategies, models, filters, date and journey version.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from journey import __version__
from journey.errors import ConfigError, DatasetError
from journey.protocols import Outcome, ProblemPosed, SessionEnded
from journey.synthesis.export_rows import (
    DEFAULT_INSTRUCTION,
    conversation_row,
    preference_pairs,
    preference_row,
    stepwise_rows,
    user_prompt,
    with_boxed_answer,
)
from journey.synthesis.files import write_atomic
from journey.synthesis.rundir import SessionSummary, read_event_log
from journey.synthesis.stats import read_run
from journey.synthesis.tree import ReasoningTree

__all__ = [
    "ExportCard",
    "ExportFormat",
    "ExportOptions",
    "card_path",
    "count_tokens_cheaply",
    "export_runs",
    "load_card",
]


class ExportFormat(StrEnum):
    SFT = "sft"
    SHORTCUT = "shortcut"
    DPO = "dpo"
    PRM = "prm"


LAYOUTS = ("prompt-completion", "messages")

TokenCounter = Callable[[str], int]


def count_tokens_cheaply(text: str) -> int:
    """A tokenizer-free estimate: the larger of the word count and characters / 4."""
    return max(len(text.split()), len(text) // 4)


@dataclass
class ExportOptions:
    """What to export and which sessions to keep."""

    format: ExportFormat | str = field(metadata={"help": "sft, shortcut, dpo or prm."})
    layout: str = field(
        default="prompt-completion",
        metadata={"help": "sft/shortcut rows: prompt-completion or messages."},
    )
    only_verified: bool | None = field(
        default=None,
        metadata={"help": "Keep only solved sessions; None: on except for prm."},
    )
    same_problems: bool = field(
        default=True,
        metadata={"help": "sft and shortcut keep only sessions that have both texts."},
    )
    min_reflections: int = field(default=0, metadata={"help": "Fewest reflections to keep."})
    min_backtracks: int = field(default=0, metadata={"help": "Fewest backtracks to keep."})
    keywords: tuple[str, ...] = field(
        default=(), metadata={"help": "Regexes the transcript must all match (case-insensitive)."}
    )
    max_tokens: int | None = field(default=None, metadata={"help": "Longest row kept, in tokens."})
    limit: int | None = field(default=None, metadata={"help": "Most rows written."})
    max_pairs_per_session: int = field(default=4, metadata={"help": "DPO pairs per session."})
    instruction: str = field(
        default=DEFAULT_INSTRUCTION, metadata={"help": "Appended to the problem in the user turn."}
    )
    tokenizer: str = field(
        default="heuristic", metadata={"help": "How --max-tokens counts: heuristic or embedded."}
    )

    def __post_init__(self) -> None:
        try:
            self.format = ExportFormat(self.format)  # a name from the command line, checked
        except ValueError:
            raise ConfigError(
                f"unknown export format {self.format!r}; choose sft, shortcut, dpo or prm"
            ) from None
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {self.layout!r}; choose {' or '.join(LAYOUTS)}")
        if self.only_verified is None:
            self.only_verified = self.format is not ExportFormat.PRM
        for name in ("min_reflections", "min_backtracks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
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
    def pairs_texts(self) -> bool:
        """sft and shortcut: the formats held to the same problems."""
        return self.format in (ExportFormat.SFT, ExportFormat.SHORTCUT)

    def filters(self) -> dict[str, Any]:
        """The options that choose sessions and rows, as the card records them."""
        record = asdict(self)
        for key in ("format", "layout", "instruction"):
            record.pop(key)
        record["keywords"] = list(self.keywords)
        return record


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
    source_runs: list[str] = Field(default_factory=list)
    strategies: list[str] = Field(default_factory=list)
    models: dict[str, list[str]] = Field(default_factory=dict)
    """Model specs per role, from `run.json` and the sessions' `problem_posed` events."""
    filters: dict[str, Any] = Field(default_factory=dict)
    instruction: str | None = None
    session_ids: list[str] = Field(default_factory=list)
    """The sessions that gave rows, in file order."""
    created: str = ""
    journey_version: str = __version__


def card_path(out: Path) -> Path:
    """Where the card of an export goes: `sft.jsonl` → `sft.card.json`."""
    return out.with_name(f"{out.stem}.card.json")


@dataclass(frozen=True)
class _Session:
    """A finished session's parts, read back from its run."""

    summary: SessionSummary
    tree: ReasoningTree
    ended: SessionEnded
    posed: ProblemPosed | None
    transcript: str
    shortcut: str | None


class _Skip(Exception):
    """A session is not exported; the message is the reason counted on the card."""


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _load_session(folder: Path, summary: SessionSummary) -> _Session:
    events_path = folder / "events.jsonl"
    if not events_path.is_file():
        raise _Skip("no event log")
    log = read_event_log(events_path)
    ended = log.events[-1] if log.events else None
    if not isinstance(ended, SessionEnded):
        raise _Skip("no session_ended")
    posed = next((e for e in log.events if isinstance(e, ProblemPosed)), None)
    try:
        tree = ReasoningTree.load(folder / "tree.json")
    except FileNotFoundError:
        raise _Skip("no tree.json") from None
    except (ValidationError, ValueError, OSError):
        raise _Skip("unreadable tree.json") from None
    transcript = _read_text(folder / "transcript.md")
    if transcript is None:
        raise _Skip("no transcript.md")
    return _Session(summary, tree, ended, posed, transcript, _read_text(folder / "shortcut.md"))


def _embedded_counter() -> TokenCounter:
    """Token counts from the embedded model's tokenizer (loads only the tokenizer)."""
    from transformers import AutoTokenizer

    from journey.agents.backends.model_store import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    return lambda text: len(tokenizer(text)["input_ids"])


class _Exporter:
    def __init__(self, options: ExportOptions, card: ExportCard, count: TokenCounter) -> None:
        self.options = options
        self.card = card
        self.count = count
        self.keywords = [re.compile(p, re.IGNORECASE) for p in options.keywords]
        self.skipped: Counter[str] = Counter()
        self.strategies: set[str] = set()
        self.models: dict[str, set[str]] = {}

    def _note_models(self, models: dict[str, Any] | None) -> None:
        for role, spec in (models or {}).items():
            self.models.setdefault(str(role), set()).add(str(spec))

    def _check_session(self, s: _Session) -> None:
        """Raise `_Skip` when a filter rejects the session as a whole."""
        o = self.options
        if o.only_verified and s.ended.outcome is not Outcome.SOLVED:
            raise _Skip(f"outcome {s.ended.outcome.value}")
        if s.ended.reflections < o.min_reflections:
            raise _Skip("too few reflections")
        if s.ended.backtracks < o.min_backtracks:
            raise _Skip("too few backtracks")
        if any(not k.search(s.transcript) for k in self.keywords):
            raise _Skip("keyword missing")
        if o.pairs_texts and o.same_problems and s.shortcut is None:
            raise _Skip("no shortcut")

    def _too_long(self, *texts: str) -> bool:
        limit = self.options.max_tokens
        return limit is not None and self.count("\n".join(texts)) > limit

    def _row_too_long(self, row: dict[str, Any]) -> bool:
        """A DPO row counts the prompt with each answer (as TRL's max_length does)."""
        if "chosen" in row:
            prompt = _row_texts(row["prompt"])
            return any(self._too_long(*prompt, *_row_texts(row[k])) for k in ("chosen", "rejected"))
        return self._too_long(*_row_texts(row))

    def rows(self, s: _Session) -> list[dict[str, Any]]:
        """The session's rows (maybe none); raises `_Skip` with the reason."""
        self._check_session(s)
        o = self.options
        prompt = user_prompt(s.tree.problem, o.instruction)
        final = s.ended.final_answer
        if o.pairs_texts:
            if o.same_problems and self._too_long(prompt, s.transcript):
                raise _Skip("too long")  # judged on the long thought in both formats
            if o.format is ExportFormat.SFT:
                answer = s.transcript
            elif s.shortcut is None:
                raise _Skip("no shortcut")
            else:
                answer = with_boxed_answer(s.shortcut, final)
            if not o.same_problems and self._too_long(prompt, answer):
                raise _Skip("too long")
            return [conversation_row(prompt, answer, layout=o.layout)]
        if o.format is ExportFormat.DPO:
            if s.ended.final_node_id is None or not s.tree[s.ended.final_node_id].verified:
                raise _Skip("no verified answer")
            pairs = preference_pairs(s.tree, s.ended.final_node_id)
            rows = [preference_row(p, prompt, final) for p in pairs]
        else:
            rows = stepwise_rows(s.tree)
        kept = [r for r in rows if not self._row_too_long(r)]
        if o.format is ExportFormat.DPO:
            kept = kept[: o.max_pairs_per_session]
        if not kept:
            raise _Skip("too long" if rows else f"no {o.format} rows")
        return kept

    def run(self, runs: Sequence[Path]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen_ids: set[str] = set()
        limit = self.options.limit
        for root in runs:
            contents = read_run(root)
            self._note_run_meta(root)
            self.card.sessions_seen += len(contents.finished) + len(contents.unfinished)
            if contents.unfinished:
                self.skipped["unfinished"] += len(contents.unfinished)
            for summary in contents.finished:
                if summary.session_id in seen_ids:
                    self.skipped["duplicate"] += 1
                    continue
                seen_ids.add(summary.session_id)
                if limit is not None and len(out) >= limit:
                    self.skipped["over limit"] += 1
                    continue
                try:
                    session = _load_session(root / "sessions" / summary.session_id, summary)
                    rows = self.rows(session)
                except _Skip as skip:
                    self.skipped[str(skip)] += 1
                    continue
                if session.posed is not None:
                    self.strategies.add(session.posed.strategy)
                    self._note_models(session.posed.models)
                if limit is not None:
                    rows = rows[: limit - len(out)]
                out.extend(rows)
                self.card.sessions_exported += 1
                self.card.session_ids.append(summary.session_id)
        self.card.skipped = dict(sorted(self.skipped.items()))
        self.card.strategies = sorted(self.strategies)
        self.card.models = {role: sorted(specs) for role, specs in sorted(self.models.items())}
        return out

    def _note_run_meta(self, root: Path) -> None:
        try:
            meta = json.loads((root / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # run.json is informative here; a run without one still exports
        if isinstance(meta, dict):
            if isinstance(meta.get("strategy"), str):
                self.strategies.add(meta["strategy"])
            if isinstance(meta.get("models"), dict):
                self._note_models(meta["models"])


def _row_texts(value: Any) -> list[str]:
    """Every text a row holds (message contents, prompts, steps), not its keys or roles."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "content" in value:
            return _row_texts(value["content"])
        return [text for item in value.values() for text in _row_texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _row_texts(item)]
    return []


def export_runs(
    runs: Sequence[Path],
    out: Path,
    options: ExportOptions,
    *,
    count_tokens: TokenCounter | None = None,
) -> ExportCard:
    """Export the finished sessions of `runs` to the JSONL file `out`, with its card.

    Args:
        runs: Run directories, read in order (a session id met twice is exported once).
        out: The JSONL file to write; replaced atomically. Its card goes to `card_path(out)`.
        options: Format, layout and filters.
        count_tokens: How `max_tokens` counts; default: per `options.tokenizer`.

    Returns:
        The card, as written.

    Raises:
        DatasetError: a path is not a run directory.
        ConfigError: no run given, or `out` is one of the runs.
    """
    if not runs:
        raise ConfigError("give at least one run directory to export")
    roots = [Path(r) for r in runs]
    for root in roots:
        read_run(root)  # one clear DatasetError for a path that is not a run, before any work
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; give a .jsonl file name")
    if count_tokens is None:
        use_tokenizer = options.tokenizer == "embedded" and options.max_tokens is not None
        count_tokens = _embedded_counter() if use_tokenizer else count_tokens_cheaply
    card = ExportCard(
        file=str(out),
        format=str(options.format),
        layout=options.layout if options.pairs_texts else None,
        source_runs=[str(r) for r in roots],
        filters=options.filters(),
        instruction=options.instruction if options.format is not ExportFormat.PRM else None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    rows = _Exporter(options, card, count_tokens).run(roots)
    card.rows = len(rows)
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(card_path(out), card.model_dump_json(indent=2) + "\n")
    return card


def load_card(path: Path) -> ExportCard:
    """Read an export's card back."""
    try:
        return ExportCard.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        raise DatasetError(f"cannot read the dataset card {str(path)!r}: {error}") from None
