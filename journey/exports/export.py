"""`journey export`: finished sessions of one or more runs as a training set, with a card.

Formats (rows built in `export_rows`):

- `sft`: the problem and the long thought, the journey: the accepted smoothed rewrite
  where `journey smooth` made one (`transcript="smoothed"`, the default), else the draft
  written by `write_long_thought` from the session's log and tree.
- `shortcut`: the problem and the accepted path alone.
- `dpo`: preference pairs from sibling branches of each tree.
- `prm`: step-level labels, with their sources, along each labelled path of each tree.

**Only evidence.** A step is taught as right only when something accepted it: the
critic's verdict, the policy's own check, or the verifier on a final answer (see
`StepLabels`; the opt-in `credit_verified_path` rule is the one exception). A session
whose path to its answer holds a step not accepted is skipped for sft, shortcut and dpo
(`path not accepted`); a PRM path with an unknown step is handled per `prm_unknown`.
Every session skipped and every row dropped is counted on the card by reason, and the
labels in the rows are counted by source.

**Same problems.** By default (`same_problems`) a session is eligible for `sft` *and*
`shortcut` only when it has both a long thought and a shortcut, every filter is judged
on the session (its long thought, its counts), and `max_tokens` is checked on the longer
of the two rows (the long thought). So `sft` and `shortcut` exports of the same runs
with the same filters hold exactly the same problems, as the seed's comparison needs.

A session that cannot be read (no `session_ended`, a tree missing or unreadable) is
skipped and counted under its reason; it never stops the export. A session id met in
two runs is exported once (the first run given wins). An export that keeps no row
raises `EmptyExportError` and writes nothing, unless `allow_empty`.

The rows go to `FILE` (written to a temporary name and renamed), and a dataset card
to `FILE` with the suffix `.card.json` (`sft.jsonl` → `sft.card.json`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from journey.errors import ConfigError, DatasetError
from journey.exports.options import (
    ExportCard,
    ExportFormat,
    ExportOptions,
    card_path,
    load_card,
)
from journey.exports.rows import (
    StepLabels,
    UnknownSteps,
    conversation_row,
    preference_pairs,
    preference_row,
    stepwise_rows,
    user_prompt,
    with_boxed_answer,
)
from journey.longthought.transcript import LongThoughtWriter
from journey.longthought.writer import write_long_thought
from journey.protocols import Outcome, ProblemPosed, SessionEnded, SessionEvent
from journey.runs.files import write_atomic
from journey.runs.rundir import SessionSummary, read_event_log
from journey.runs.smoothing_job import RECORD_NAME, SMOOTHED_NAME
from journey.runs.stats import read_run
from journey.sessions.tree import ReasoningTree, TreeNode

__all__ = [
    "EmptyExportError",
    "ExportCard",
    "ExportFormat",
    "ExportOptions",
    "card_path",
    "count_tokens_cheaply",
    "export_runs",
    "load_card",
]

TokenCounter = Callable[[str], int]


class EmptyExportError(DatasetError):
    """No row was left to write; the message says why (the card's counts)."""


def count_tokens_cheaply(text: str) -> int:
    """A tokenizer-free estimate: the larger of the word count and characters / 4."""
    return max(len(text.split()), len(text) // 4)


@dataclass(frozen=True)
class _Session:
    """A finished session's parts, read back from its run."""

    summary: SessionSummary
    folder: Path
    events: list[SessionEvent]
    tree: ReasoningTree
    ended: SessionEnded
    posed: ProblemPosed | None

    @property
    def answer_path(self) -> list[TreeNode]:
        """The steps from the problem to the final answer; [] when the session has none."""
        final = self.ended.final_node_id
        return [] if final is None else self.tree.path(final)[1:]


class _Skip(Exception):
    """A session is not exported; the message is the reason counted on the card."""


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
    return _Session(summary, folder, log.events, tree, ended, posed)


def _smoothed(folder: Path) -> str | None:
    """The accepted smoothed rewrite of a session, if `journey smooth` made one."""
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
        if record.get("accepted") is True:
            return (folder / SMOOTHED_NAME).read_text(encoding="utf-8").strip() or None
    except (OSError, ValueError, AttributeError):
        pass  # not smoothed, or its record is damaged: the draft it is
    return None


def _embedded_counter() -> TokenCounter:
    """Token counts from the embedded model's tokenizer (loads only the tokenizer)."""
    from transformers import AutoTokenizer

    from journey.engine.model_store import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    return lambda text: len(tokenizer(text)["input_ids"])


class _Exporter:
    def __init__(self, options: ExportOptions, card: ExportCard, count: TokenCounter) -> None:
        self.options = options
        self.card = card
        self.count = count
        self.keywords = [re.compile(p, re.IGNORECASE) for p in options.keywords]
        self.skipped: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.labels: Counter[tuple[str, str]] = Counter()
        self.transcripts: Counter[str] = Counter()
        self.strategies: set[str] = set()
        self.settings: dict[str, set[str]] = {}
        self.models: dict[str, set[str]] = {}

    def _note_models(self, models: dict[str, Any] | None) -> None:
        for role, spec in (models or {}).items():
            self.models.setdefault(str(role), set()).add(str(spec))

    def _long_thought(self, s: _Session) -> tuple[str, str]:
        """The session's long thought and which text it is (smoothed or draft)."""
        if self.options.transcript == "smoothed":
            smoothed = _smoothed(s.folder)
            if smoothed is not None:
                return smoothed, "smoothed"
        return write_long_thought(s.events, s.tree, self.options.writer), "draft"

    def _check_session(self, s: _Session, labels: StepLabels, transcript: str) -> None:
        """Raise `_Skip` when a filter rejects the session as a whole."""
        o = self.options
        if o.only_verified and s.ended.outcome is not Outcome.SOLVED:
            raise _Skip(f"outcome {s.ended.outcome.value}")
        if s.ended.reflections < o.min_reflections:
            raise _Skip("too few reflections")
        if s.ended.backtracks < o.min_backtracks:
            raise _Skip("too few backtracks")
        if o.max_violations is not None and s.ended.violations > o.max_violations:
            raise _Skip("too many violations")
        if not transcript.strip():
            raise _Skip("empty long thought")
        if any(not k.search(transcript) for k in self.keywords):
            raise _Skip("keyword missing")
        if o.format is not ExportFormat.PRM and not labels.accepted(s.answer_path):
            raise _Skip("path not accepted")  # a step on it was never accepted with evidence
        if o.pairs_texts and o.same_problems and not s.answer_path:
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
        o = self.options
        labels = StepLabels(s.tree, credit_verified_path=o.credit_verified_path)
        transcript, which = self._long_thought(s)
        self._check_session(s, labels, transcript)
        prompt = user_prompt(s.tree.problem, o.instruction)
        final = s.ended.final_answer
        if o.pairs_texts:
            if o.same_problems and self._too_long(prompt, transcript):
                raise _Skip("too long")  # judged on the long thought in both formats
            if o.format is ExportFormat.SFT:
                answer = transcript
                self.transcripts[which] += 1
            elif not s.answer_path:
                raise _Skip("no shortcut")
            else:
                shortcut = LongThoughtWriter.shortcut(s.tree, s.ended.final_node_id) or ""
                answer = with_boxed_answer(shortcut, final)
            if not o.same_problems and self._too_long(prompt, answer):
                raise _Skip("too long")
            labels.count(s.answer_path, self.labels)
            return [conversation_row(prompt, answer, layout=o.layout)]
        if o.format is ExportFormat.DPO:
            if s.ended.final_node_id is None or not s.tree[s.ended.final_node_id].verified:
                raise _Skip("no verified answer")
            pairs = preference_pairs(s.tree, s.ended.final_node_id)
            built = [(p, preference_row(p, prompt, final)) for p in pairs]
            short = [(p, row) for p, row in built if not self._row_too_long(row)]
            kept = short[: o.max_pairs_per_session]
            self.dropped["too long"] += len(built) - len(short)
            self.dropped["over max_pairs_per_session"] += len(short) - len(kept)
            for pair, _ in kept:
                labels.count([*pair.chosen, *pair.rejected], self.labels)
            rows = [row for _, row in kept]
            if not rows:
                raise _Skip("too long" if built else "no dpo rows")
            return rows
        unknown = UnknownSteps(o.prm_unknown)  # already one: `ExportOptions` checks it
        built_prm = stepwise_rows(s.tree, labels, unknown=unknown, dropped=self.dropped)
        rows = [r for r in built_prm if not self._row_too_long(r)]
        self.dropped["too long"] += len(built_prm) - len(rows)
        for row in rows:
            for source, label in zip(row["label_sources"], row["labels"], strict=True):
                name = "unknown" if label is None else ("correct" if label else "incorrect")
                self.labels[(source, name)] += 1
        if not rows:
            raise _Skip("too long" if built_prm else "no prm rows")
        return rows

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
                    self._note_settings(session.posed)
                if limit is not None:
                    self.dropped["over limit"] += max(len(rows) - (limit - len(out)), 0)
                    rows = rows[: limit - len(out)]
                out.extend(rows)
                self.card.sessions_exported += 1
                self.card.session_ids.append(summary.session_id)
        self.card.skipped = dict(sorted(self.skipped.items()))
        self.card.rows_dropped = {k: v for k, v in sorted(self.dropped.items()) if v}
        labels: dict[str, dict[str, int]] = {}
        for (source, label), count in sorted(self.labels.items()):
            labels.setdefault(source, {})[label] = count
        self.card.labels = labels
        self.card.transcripts = dict(sorted(self.transcripts.items()))
        self.card.strategies = sorted(self.strategies)
        self.card.strategy_settings = {
            key: [json.loads(v) for v in sorted(values)]
            for key, values in sorted(self.settings.items())
        }
        self.card.models = {role: sorted(specs) for role, specs in sorted(self.models.items())}
        return out

    def _note_settings(self, posed: ProblemPosed) -> None:
        """Strategy settings are the config keys named after the strategy (`beam_size`)."""
        prefix = posed.strategy.replace("-", "_") + "_"
        for key, value in posed.config.items():
            if key.startswith(prefix):
                self.settings.setdefault(key, set()).add(json.dumps(value))

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


def _why_empty(card: ExportCard) -> str:
    reasons = [f"{count} {reason}" for reason, count in card.skipped.items()]
    reasons += [f"{count} rows {reason}" for reason, count in card.rows_dropped.items()]
    why = "; ".join(reasons) if reasons else "the runs hold no finished session"
    return (
        f"no {card.format} rows to write: {card.sessions_seen} sessions seen, skipped: {why}. "
        "Check the filters and the runs' outcomes, or pass --allow-empty"
    )


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
        options: Format, layout, filters, label rules and writer options.
        count_tokens: How `max_tokens` counts; default: per `options.tokenizer`.

    Returns:
        The card, as written.

    Raises:
        DatasetError: a path is not a run directory.
        EmptyExportError: no row is left (and `options.allow_empty` is off); nothing written.
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
        writer=options.writer.record() if options.format is ExportFormat.SFT else {},
        instruction=options.instruction if options.format is not ExportFormat.PRM else None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    rows = _Exporter(options, card, count_tokens).run(roots)
    card.rows = len(rows)
    if not rows and not options.allow_empty:
        raise EmptyExportError(_why_empty(card))
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(card_path(out), card.model_dump_json(indent=2) + "\n")
    return card
