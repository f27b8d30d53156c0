"""`journey export`: finished sessions of one or more runs as a training set, with a card.

Formats (rows built by `RowSelection`, in `_row_selection`):

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

This module drives the export: it reads the runs in order, counts what it skips, fills
the card and writes the file. A session is read back in `_finished_session`, and token
counts come from `token_counts`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journey.errors import ConfigError, DatasetError
from journey.exports._finished_session import SessionSkipped, load_session
from journey.exports._row_selection import RowSelection
from journey.exports.options import (
    ExportCard,
    ExportFormat,
    ExportOptions,
    card_path,
    load_card,
)
from journey.exports.token_counts import (
    TokenCounter,
    count_tokens_cheaply,
    embedded_token_counter,
)
from journey.problems import HeldOutProblems
from journey.protocols import ExpansionRejected, ProblemPosed, SessionEvent
from journey.protocols.expansion import rejection_kind
from journey.runs.files import write_atomic
from journey.runs.rollout_labels import read_rollouts
from journey.runs.stats import read_run

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


REJECTED = "expansion attempts rejected"
"""The card's `dropped_upstream` key counting rejected expansions (`REJECTED: kind` by kind)."""


class EmptyExportError(DatasetError):
    """No row was left to write; the message says why (the card's counts)."""


class _Exporter:
    def __init__(
        self,
        options: ExportOptions,
        card: ExportCard,
        count: TokenCounter,
        held_out: HeldOutProblems | None,
    ) -> None:
        self.options = options
        self.held_out = held_out
        self.card = card
        self.selection = RowSelection(options, count)
        self.skipped: Counter[str] = Counter()
        self.upstream: Counter[str] = Counter()
        self.strategies: set[str] = set()
        self.settings: dict[str, set[str]] = {}
        self.models: dict[str, set[str]] = {}

    def _note_models(self, models: dict[str, Any] | None) -> None:
        for role, spec in (models or {}).items():
            self.models.setdefault(str(role), set()).add(str(spec))

    def run(self, runs: Sequence[Path]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen_ids: set[str] = set()
        limit = self.options.limit
        for root in runs:
            contents = read_run(root)
            rollouts = read_rollouts(root)
            self._note_run_meta(root)
            self.card.sessions_seen += len(contents.finished) + len(contents.unfinished)
            if contents.unfinished:
                self.skipped["unfinished"] += len(contents.unfinished)
            for summary in contents.finished:
                if summary.session_id in seen_ids:
                    self.skipped["duplicate"] += 1
                    continue
                seen_ids.add(summary.session_id)
                if self.held_out is not None and summary.problem in self.held_out:
                    self.skipped["held out"] += 1
                    continue
                if limit is not None and len(out) >= limit:
                    self.skipped["over limit"] += 1
                    continue
                try:
                    session = load_session(root / "sessions" / summary.session_id, summary)
                    if rollouts.judge is not None:  # a relabelled run: `journey label`'s win
                        session = replace(
                            session,
                            rollouts=rollouts.sessions.get(summary.session_id, {}),
                            rollout_judge=rollouts.judge,
                        )
                    self._note_rejections(session.events)
                    rows = self.selection.rows(session)
                except SessionSkipped as skip:
                    self.skipped[str(skip)] += 1
                    continue
                if session.posed is not None:
                    self.strategies.add(session.posed.strategy)
                    self._note_models(session.posed.models)
                    self._note_settings(session.posed)
                if limit is not None:
                    self.selection.dropped["over limit"] += max(len(rows) - (limit - len(out)), 0)
                    rows = rows[: limit - len(out)]
                out.extend(rows)
                self.card.sessions_exported += 1
                self.card.session_ids.append(summary.session_id)
        self.card.skipped = dict(sorted(self.skipped.items()))
        self.card.rows_dropped = {k: v for k, v in sorted(self.selection.dropped.items()) if v}
        self.card.dropped_upstream = dict(sorted(self.upstream.items()))
        labels: dict[str, dict[str, int]] = {}
        for (source, label), count in sorted(self.selection.labels.items()):
            labels.setdefault(source, {})[label] = count
        self.card.labels = labels
        self.card.transcripts = dict(sorted(self.selection.transcripts.items()))
        self.card.wrong_turns_left_out = dict(sorted(self.selection.wrong_turns_left_out.items()))
        self.card.rollouts = dict(sorted(self.selection.rollouts.items()))
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

    def _note_rejections(self, events: Sequence[SessionEvent]) -> None:
        """Count a session's rejected expansion attempts, in total and by kind."""
        for event in events:
            if isinstance(event, ExpansionRejected):
                self.upstream[REJECTED] += 1
                for kind in sorted({rejection_kind(reason) for reason in event.reasons}):
                    self.upstream[f"{REJECTED}: {kind}"] += 1

    def _note_run_meta(self, root: Path) -> None:
        try:
            meta = json.loads((root / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # run.json is informative here; a run without one still exports
        if isinstance(meta, dict):
            self._note_left_out(meta)
            if isinstance(meta.get("strategy"), str):
                self.strategies.add(meta["strategy"])
            if isinstance(meta.get("models"), dict):
                self._note_models(meta["models"])

    def _note_left_out(self, meta: dict[str, Any]) -> None:
        """Count the problems an expand run left out, as its latest run recorded them."""
        resumed = meta.get("resumed")
        latest = resumed[-1] if isinstance(resumed, list) and resumed else meta
        dataset = latest.get("dataset") if isinstance(latest, dict) else None
        left_out = dataset.get("without_reference") if isinstance(dataset, dict) else None
        if isinstance(left_out, dict):
            for reason, count in left_out.items():
                if isinstance(count, int) and count:
                    self.upstream[f"problem without a reference solution: {reason}"] += count


def _why_empty(card: ExportCard) -> str:
    why = [f"{count} skipped: {reason}" for reason, count in card.skipped.items()]
    why += [f"{count} rows dropped: {reason}" for reason, count in card.rows_dropped.items()]
    return (
        f"no {card.format} rows to write: {card.sessions_seen} sessions seen; "
        f"{'; '.join(why) or 'the runs hold no finished session'}. "
        "Check the filters and the runs' outcomes, or pass --allow-empty"
    )


def export_runs(
    runs: Sequence[Path],
    out: Path,
    options: ExportOptions,
    *,
    count_tokens: TokenCounter | None = None,
    held_out: HeldOutProblems | None = None,
) -> ExportCard:
    """Export the finished sessions of `runs` to the JSONL file `out`, with its card.

    Args:
        runs: Run directories, read in order (a session id met twice is exported once).
        out: The JSONL file to write; replaced atomically. Its card goes to `card_path(out)`.
        options: Format, layout, filters, label rules and writer options.
        count_tokens: How `max_tokens` counts; default: per `options.tokenizer`.
        held_out: An evaluation set: a session whose problem is one of its problems is
            left out (counted under `skipped["held out"]`, the set named in the card).

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
        count_tokens = embedded_token_counter() if use_tokenizer else count_tokens_cheaply
    card = ExportCard(
        file=str(out),
        format=str(options.format),
        layout=options.layout if options.has_layout else None,
        source_runs=[str(r) for r in roots],
        filters=options.filters(),
        held_out=held_out.record() if held_out is not None else None,
        writer=options.writer.record() if options.format is ExportFormat.SFT else {},
        instruction=options.instruction if not options.step_rows else None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    rows = _Exporter(options, card, count_tokens, held_out).run(roots)
    card.rows = len(rows)
    if not rows and not options.allow_empty:
        raise EmptyExportError(_why_empty(card))
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(card_path(out), card.model_dump_json(indent=2) + "\n")
    return card
