"""Which rows a finished session gives an export: the filters that skip a session as a
whole, the rows built per format, and the rows dropped (too long, over the per-session
pair limit), with the labels kept counted by source for the card."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from journey.exports._finished_session import FinishedSession, SessionSkipped
from journey.exports.options import ExportFormat, ExportOptions
from journey.exports.revisions import default_policy_messages, in_layout, revision_row, revisions
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
from journey.exports.token_counts import TokenCounter
from journey.longthought.transcript import LongThoughtWriter
from journey.longthought.writer import LongThought, long_thought
from journey.protocols import Outcome
from journey.runs.smoothing_job import accepted_smoothed

__all__ = ["RowSelection"]


class RowSelection:
    """Builds each session's rows per `ExportOptions`, counting rows dropped and labels kept."""

    def __init__(self, options: ExportOptions, count: TokenCounter) -> None:
        """
        Args:
            options: The export's format, filters and label rules.
            count: How `max_tokens` counts a text.
        """
        self.options = options
        self.count = count
        self.keywords = [re.compile(p, re.IGNORECASE) for p in options.keywords]
        self.dropped: Counter[str] = Counter()
        self.labels: Counter[tuple[str, str]] = Counter()
        self.transcripts: Counter[str] = Counter()
        self.wrong_turns_left_out: Counter[str] = Counter()
        """sft: failed branches of exported long thoughts the tree walk passed over, by why."""
        self.rollouts: Counter[str] = Counter()
        """PRM steps carrying a rollout estimate, per judge."""
        self.policy = default_policy_messages()
        """revision: the messages a debate's policy is asked with."""

    def _long_thought(self, s: FinishedSession) -> tuple[LongThought, str]:
        """The session's long thought and which text it is (smoothed or draft)."""
        if self.options.transcript == "smoothed":
            smoothed = accepted_smoothed(s.folder)
            if smoothed is not None:
                return LongThought(smoothed), "smoothed"
        return long_thought(s.events, s.tree, self.options.writer), "draft"

    def _check_session(
        self, s: FinishedSession, labels: StepLabels, transcript: str | None
    ) -> None:
        """Raise `SessionSkipped` when a filter rejects the session as a whole.

        `transcript` is the session's long thought, or None where the export writes none
        (rows of single steps, with no keyword to search for)."""
        o = self.options
        if o.only_verified and s.ended.outcome is not Outcome.SOLVED:
            raise SessionSkipped(f"outcome {s.ended.outcome.value}")
        if s.ended.reflections < o.min_reflections:
            raise SessionSkipped("too few reflections")
        if s.ended.backtracks < o.min_backtracks:
            raise SessionSkipped("too few backtracks")
        if o.max_violations is not None and s.ended.violations > o.max_violations:
            raise SessionSkipped("too many violations")
        if transcript is not None and not transcript.strip():
            raise SessionSkipped("empty long thought")
        if transcript is not None and any(not k.search(transcript) for k in self.keywords):
            raise SessionSkipped("keyword missing")
        if not o.step_rows and not labels.accepted(s.answer_path):
            # a step on the path was never accepted with evidence
            raise SessionSkipped("path not accepted")
        if o.pairs_texts and o.same_problems and not s.answer_path:
            raise SessionSkipped("no shortcut")

    def _too_long(self, *texts: str) -> bool:
        limit = self.options.max_tokens
        return limit is not None and self.count("\n".join(texts)) > limit

    def _row_too_long(self, row: dict[str, Any]) -> bool:
        """A DPO row counts the prompt with each answer (as TRL's max_length does)."""
        if "chosen" in row:
            prompt = _row_texts(row["prompt"])
            return any(self._too_long(*prompt, *_row_texts(row[k])) for k in ("chosen", "rejected"))
        return self._too_long(*_row_texts(row))

    def rows(self, s: FinishedSession) -> list[dict[str, Any]]:
        """The session's rows (maybe none); raises `SessionSkipped` with the reason."""
        o = self.options
        labels = StepLabels(s.tree, credit_verified_path=o.credit_verified_path)
        if o.step_rows:
            # Rows of single steps hold no long thought: one is written only to search it.
            searched = self._long_thought(s)[0].text if self.keywords else None
            self._check_session(s, labels, searched)
            return self._step_rows(s, labels)
        thought, which = self._long_thought(s)
        transcript = thought.text
        self._check_session(s, labels, transcript)
        prompt = user_prompt(s.tree.problem, o.instruction)
        final = s.ended.final_answer
        if o.pairs_texts:
            if o.same_problems and self._too_long(prompt, transcript):
                raise SessionSkipped("too long")  # judged on the long thought in both formats
            if o.format is ExportFormat.SFT:
                answer = transcript
            elif not s.answer_path:
                raise SessionSkipped("no shortcut")
            else:
                shortcut = LongThoughtWriter.shortcut(s.tree, s.ended.final_node_id) or ""
                answer = with_boxed_answer(shortcut, final)
            if not o.same_problems and self._too_long(prompt, answer):
                raise SessionSkipped("too long")
            if o.format is ExportFormat.SFT:  # counted once the row is sure to be written
                self.transcripts[which] += 1
                self.wrong_turns_left_out.update(thought.wrong_turns_left_out)
            labels.count(s.answer_path, self.labels)
            return [conversation_row(prompt, answer, layout=o.layout)]
        if o.format is ExportFormat.DPO:
            if s.ended.final_node_id is None or not s.tree[s.ended.final_node_id].verified:
                raise SessionSkipped("no verified answer")
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
                raise SessionSkipped("too long" if built else "no dpo rows")
            return rows
        raise AssertionError(f"no rows for format {o.format}")  # `ExportFormat` has no other

    def _step_rows(self, s: FinishedSession, labels: StepLabels) -> list[dict[str, Any]]:
        """prm and revision rows."""
        o = self.options
        if o.format is ExportFormat.REVISION:
            return self._revision_rows(s, labels)
        unknown = UnknownSteps(o.prm_unknown)  # already one: `ExportOptions` checks it
        built_prm = stepwise_rows(
            s.tree,
            labels,
            unknown=unknown,
            dropped=self.dropped,
            rollouts=s.rollouts,
            rollout_judge=s.rollout_judge,
        )
        rows = [r for r in built_prm if not self._row_too_long(r)]
        self.dropped["too long"] += len(built_prm) - len(rows)
        for row in rows:
            if s.rollout_judge is not None:
                carried = sum(1 for estimate in row["rollouts"] if estimate is not None)
                self.rollouts[s.rollout_judge] += carried
            for source, label in zip(row["label_sources"], row["labels"], strict=True):
                name = "unknown" if label is None else ("correct" if label else "incorrect")
                self.labels[(source, name)] += 1
        if not rows:
            raise SessionSkipped("too long" if built_prm else "no prm rows")
        return rows

    def _revision_rows(self, s: FinishedSession, labels: StepLabels) -> list[dict[str, Any]]:
        found = revisions(s.tree, labels)
        built = [(r, revision_row(r, s.tree, self.policy)) for r in found.found]
        kept = [(r, row) for r, row in built if not self._row_too_long(row)]
        self.dropped["too long"] += len(built) - len(kept)
        self.dropped.update(found.left_out)
        for revision, _ in kept:
            labels.count([revision.rejected, revision.revised], self.labels)
        if not kept:
            raise SessionSkipped("too long" if built else "no revisions")
        return [in_layout(row, self.options.layout) for _, row in kept]


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
