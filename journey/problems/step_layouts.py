"""Where the parts of a step-labelled solution lie in a dataset line: `StepLabelLayout`,
the built-in layouts, and `--field-map` values read into one.

Three layouts are built in (`LAYOUTS`), and `--field-map KEY=PATH` changes any part:

- `mr-gsm8k` (the default): `question`, `steps`, `first_error_step` (1-based, null
  when every step is correct), `gold_answer`, `question_type`, `id` (MR-GSM8K).
- `processbench`: `problem`, `steps`, `label` (0-based index of the first wrong step,
  -1 when every step is correct), `id` (Qwen's ProcessBench, e.g.
  `hf:Qwen/ProcessBench@gsm8k`).
- `prm800k`: phase-2 lines of OpenAI's PRM800K: `question.problem`,
  `question.pre_generated_steps`, the rating of each step's first completion (the
  pre-generated step) as `label.steps.*.completions.0.rating` (-1 wrong, 0 neutral, 1
  good), `question.ground_truth_answer`.

A PATH is dotted: `question.problem`; a number indexes a list (`completions.0`) and `*`
maps the rest of the path over a list (`label.steps.*.rating`); `value_at` follows one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from journey.errors import ConfigError

__all__ = [
    "DEFAULT_LAYOUT",
    "LAYOUTS",
    "MISSING",
    "StepLabelLayout",
    "parse_field_map",
    "value_at",
]

MISSING = object()
"""What `value_at` returns where a path leads nowhere."""


@dataclass(frozen=True)
class StepLabelLayout:
    """Where the parts of a step-labelled solution lie in a line (dotted paths)."""

    problem: str = "question"
    steps: str = "steps"
    first_error: str | None = "first_error_step"
    """Index of the first wrong step; null or negative: none. Exclusive with `ratings`."""
    first_error_base: int = 1
    """What `first_error` counts from: 1 (MR-GSM8K) or 0 (ProcessBench)."""
    ratings: str | None = None
    """One rating per step (a number or a boolean); exclusive with `first_error`."""
    answer: str | None = "gold_answer"
    type: str | None = "question_type"
    """The group each solution is reported in (`question_type`); None: one group."""
    id: str | None = "id"
    """The solution's id; missing: the hash of its problem and steps."""

    def __post_init__(self) -> None:
        if (self.first_error is None) == (self.ratings is None):
            raise ConfigError(
                "a step-label layout needs exactly one of first_error and ratings, got "
                f"first_error={self.first_error!r}, ratings={self.ratings!r}"
            )
        if self.first_error_base not in (0, 1):
            raise ConfigError(f"first_error_base must be 0 or 1, got {self.first_error_base!r}")

    def record(self) -> dict[str, Any]:
        """The layout as a manifest keeps it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_LAYOUT = "mr-gsm8k"

LAYOUTS: Mapping[str, StepLabelLayout] = {
    "mr-gsm8k": StepLabelLayout(),
    "processbench": StepLabelLayout(
        problem="problem", first_error="label", first_error_base=0, answer=None, type=None
    ),
    "prm800k": StepLabelLayout(
        problem="question.problem",
        steps="question.pre_generated_steps",
        first_error=None,
        ratings="label.steps.*.completions.0.rating",
        answer="question.ground_truth_answer",
        type=None,
        id=None,
    ),
}


def parse_field_map(items: Sequence[str]) -> StepLabelLayout:
    """A layout from `--field-map` values, applied in order: a layout's name (`LAYOUTS`)
    starts again from it; `KEY=PATH` sets one part (an empty PATH unsets it).

    Raises:
        ConfigError: an unknown layout or key, or a layout without a first-error source.
    """
    layout = LAYOUTS[DEFAULT_LAYOUT]
    keys = {f.name for f in fields(StepLabelLayout)}
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq:
            if key not in LAYOUTS:
                raise ConfigError(
                    f"unknown field map {item!r}: name a layout ({', '.join(LAYOUTS)}) "
                    f"or give KEY=PATH with KEY one of {', '.join(sorted(keys))}"
                )
            layout = LAYOUTS[key]
            continue
        if key not in keys:
            raise ConfigError(f"unknown field {key!r} in {item!r}: use {', '.join(sorted(keys))}")
        if key == "first_error_base":
            if value not in ("0", "1"):
                raise ConfigError(f"first_error_base must be 0 or 1, got {value!r}")
            layout = replace(layout, first_error_base=int(value))
        elif key == "first_error" and value:  # an index replaces ratings, and back
            layout = replace(layout, first_error=value, ratings=None)
        elif key == "ratings" and value:
            layout = replace(layout, ratings=value, first_error=None)
        elif not value and key in ("problem", "steps"):
            raise ConfigError(f"{key!r} cannot be unset ({item!r})")
        else:
            changes: dict[str, Any] = {key: value or None}
            layout = replace(layout, **changes)
    return layout


def value_at(value: Any, path: str) -> Any:
    """The value at a dotted path, a list where `*` maps over one; `MISSING` if absent."""
    parts = path.split(".")
    for position, part in enumerate(parts):
        if part == "*":
            if not isinstance(value, list):
                return MISSING
            rest = ".".join(parts[position + 1 :])
            return [value_at(item, rest) if rest else item for item in value]
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value
