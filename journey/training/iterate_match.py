"""Equal data for every arm: the rows each arm of a round trains on, matched by count.

An experiment that asks whether journey rows teach more than shortcut rows must give
both arms the same budget, or the one with more data wins for that reason alone. Two
budgets are offered (`training.match`):

- `rows`: every arm gets as many rows as the smallest arm has;
- `tokens`: every arm gets rows until the smallest arm's token total is reached; the
  row that would pass it is taken only when that lands nearer the total than stopping
  short, so every arm's total is within half a row of the smallest arm's.

Which rows is chosen by the training seed: one shuffle of row positions per seed, the
same for every arm, so arms exported from the same sessions in the same order keep the
same problems as far as their budgets allow. An arm's phases (`[shortcut, journey]`)
are pooled, and each phase keeps its chosen rows in file order. The counted tokens
are those the loss is computed on: the completion (or, in the `messages` layout, the
last reply), as `journey train` trains.

`none` leaves the files as exported; the rows and tokens are counted all the same, so
the report says what every arm trained on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from journey.errors import DatasetError
from journey.exports.token_counts import TokenCounter
from journey.runs.files import write_atomic
from journey.training.iterate_settings import MatchMode

__all__ = ["ArmData", "PhaseData", "match_arms", "trained_text"]


def trained_text(row: Mapping[str, Any]) -> str:
    """The text of a row the loss is computed on: its completion, else its last reply."""
    if "completion" in row:
        messages = row["completion"]
    else:
        replies = [m for m in row.get("messages", []) if m.get("role") == "assistant"]
        messages = replies[-1:]
    if isinstance(messages, str):  # TRL's standard (not conversational) format
        return messages
    return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, Mapping))


@dataclass(frozen=True)
class PhaseData:
    """The file one phase of an arm trains on, and what it holds."""

    file: Path
    rows: int
    tokens: int


@dataclass(frozen=True)
class ArmData:
    """What one arm trains on, phase by phase."""

    phases: tuple[PhaseData, ...]

    @property
    def rows(self) -> int:
        return sum(phase.rows for phase in self.phases)

    @property
    def tokens(self) -> int:
        return sum(phase.tokens for phase in self.phases)


@dataclass(frozen=True)
class _Row:
    phase: int
    line: str
    tokens: int


def _read(file: Path, phase: int, count: TokenCounter) -> list[_Row]:
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"{file}:{number}: not a JSON line") from None
        rows.append(_Row(phase, line, count(trained_text(row))))
    return rows


def _chosen(rows: Sequence[_Row], mode: MatchMode, budget: int, seed: int) -> list[_Row]:
    """The rows an arm keeps within `budget` (rows or tokens), in file order."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)  # the same positions for every arm of a seed
    kept: list[int] = []
    used = 0
    for position in order:
        cost = 1 if mode == "rows" else rows[position].tokens
        if used + cost > budget and used + cost - budget >= budget - used:
            break  # the nearest total to the budget is the one without this row
        kept.append(position)
        used += cost
        if used >= budget:
            break
    return [rows[position] for position in sorted(kept)]


def match_arms(
    arms: Mapping[str, Sequence[Path]],
    *,
    mode: MatchMode,
    seed: int,
    count: TokenCounter,
    out: Path,
) -> dict[str, ArmData]:
    """Each arm's phase files, matched to the smallest arm's budget.

    Args:
        arms: Each arm's phase files, in phase order.
        mode: `none` (the files as they are), `rows` or `tokens`.
        seed: Chooses the rows kept.
        count: Counts a text's tokens.
        out: Where matched files go: `out/ARM/PHASE-NAME` (untouched with `none`).

    Raises:
        DatasetError: a file has a line that is not JSON.
    """
    read = {
        arm: [_read(file, phase, count) for phase, file in enumerate(files)]
        for arm, files in arms.items()
    }
    if mode == "none":
        return {
            arm: ArmData(
                tuple(
                    PhaseData(file, len(rows), sum(r.tokens for r in rows))
                    for file, rows in zip(arms[arm], read[arm], strict=True)
                )
            )
            for arm in arms
        }
    pooled = {arm: [row for rows in phases for row in rows] for arm, phases in read.items()}
    budget = min(
        len(rows) if mode == "rows" else sum(row.tokens for row in rows) for rows in pooled.values()
    )
    matched = {}
    for arm, files in arms.items():
        kept = _chosen(pooled[arm], mode, budget, seed)
        phases = []
        for phase, file in enumerate(files):
            rows = [row for row in kept if row.phase == phase]
            target = out / arm / f"{phase + 1}-{file.name}"
            write_atomic(target, "".join(row.line + "\n" for row in rows))
            phases.append(PhaseData(target, len(rows), sum(row.tokens for row in rows)))
        matched[arm] = ArmData(tuple(phases))
    return matched
