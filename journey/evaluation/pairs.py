"""DPO pairs from a model's own samples: the seed paper's recipe, and its dataset card.

For every problem the model answers `samples` times (20 by default; temperature 0.7,
top-p 0.95). Each answer is graded against the gold answer and the answers are split
into correct and incorrect. Up to `pairs_per_problem` (5) of each are drawn without
replacement and zipped into pairs `{"prompt", "chosen", "rejected"}`: a problem gives
min(#correct, #incorrect, 5) pairs. A problem whose answers are all correct, all wrong,
or carry no extractable answer at all gives none; it is counted on the card by reason.

The draw is a pure function of the samples and the seed (`draw_pairs`), so the pairs
file can be rebuilt from the samples at any time, e.g. with another pairs-per-problem.
Sampling itself (resumable, concurrent) is in `pairs_sampling`.

Rows are TRL's conversational preference format, exactly as `journey export --format dpo`
writes them, with the exports' user turn (`user_prompt`), so `journey train dpo` reads
them unchanged and the model is trained on the prompt `journey eval` asks.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, Field

from journey.agents.backends.spec import create_client, parse_model_spec
from journey.errors import ConfigError
from journey.evaluation.runner import MODEL_ROLE
from journey.exports.export import ExportCard, card_path
from journey.exports.rows import DEFAULT_INSTRUCTION
from journey.problems.dataset import ProblemRecord
from journey.runs.files import write_atomic
from journey.runs.request_accounts import SpendReport, SpendSettings

__all__ = [
    "ALL_CORRECT",
    "ALL_WRONG",
    "LEFT_FOR_LATER",
    "NOT_SAMPLED",
    "NO_ANSWER",
    "NO_PAIR_REASONS",
    "PairsCard",
    "PairsOptions",
    "ProblemSamples",
    "Sample",
    "derived_seed",
    "draw_pairs",
    "manifest_path",
    "samples_path",
    "spend_prefix",
    "write_pairs",
]

ALL_CORRECT = "all correct"
ALL_WRONG = "all wrong"
NO_ANSWER = "no extractable answer"
NOT_SAMPLED = "not sampled (requests failed)"
LEFT_FOR_LATER = "not sampled yet (budget spent)"
NO_PAIR_REASONS = (ALL_CORRECT, ALL_WRONG, NO_ANSWER, NOT_SAMPLED, LEFT_FOR_LATER)
"""Why a problem gave no pair, as counted on the card's `skipped`."""


@dataclass(frozen=True)
class PairsOptions:
    """How answers are sampled and how many pairs each problem gives."""

    model: str = field(
        default="embedded",
        metadata={
            "help": "Model spec (see 'journey models'): embedded, hf:DIR (a trained output)..."
        },
    )
    samples: int = field(default=20, metadata={"help": "Answers sampled per problem."})
    pairs_per_problem: int = field(
        default=5, metadata={"help": "Most pairs per problem: min(#correct, #wrong, this)."}
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus-sampling mass."})
    max_new_tokens: int = field(default=512, metadata={"help": "Generation limit per answer."})
    seed: int = field(default=0, metadata={"help": "Seeds the samples and the draw of pairs."})
    batch_size: int = field(
        default=8,
        metadata={"help": "Requests sent to the model at once (a local model's batch)."},
    )
    instruction: str = field(
        default=DEFAULT_INSTRUCTION, metadata={"help": "Appended to the problem in the user turn."}
    )
    spending: SpendSettings = field(
        default_factory=SpendSettings,
        metadata={"help": "The response cache, the prices and the budget of the requests."},
    )

    def __post_init__(self) -> None:
        parse_model_spec(self.model)  # raises ModelSpecError on a bad spec
        self.spending.meter({MODEL_ROLE: self.model})  # a USD budget needs the model's price
        if self.samples < 2:
            raise ConfigError(f"samples must be at least 2, got {self.samples!r}")
        for name in ("pairs_per_problem", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}")

    def manifest(self) -> dict[str, object]:
        """What must not change between a sampling run and its resumption (the spending
        may: the sampler records it beside)."""
        return {
            "model": self.model,
            "samples": self.samples,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "instruction": self.instruction,
        }

    def client(self) -> ChatCompletionClient:
        """The client the model spec names, batching up to `batch_size` requests locally."""
        spec = parse_model_spec(self.model).with_default("max_batch_size", self.batch_size)
        return create_client(spec)


class Sample(BaseModel):
    """One sampled answer and its grade."""

    text: str
    predicted: str | None
    """The final answer the text marks, or None when it marks none (graded wrong)."""
    correct: bool
    finish_reason: str
    tokens: int
    seed: int | None = None
    """The seed sent with the request (None for greedy decoding)."""


class ProblemSamples(BaseModel):
    """All samples of one problem: one line of the samples file."""

    id: str
    """The problem's stable session id (`ProblemRecord.session_id`)."""
    index: int
    line: int
    problem: str
    gold: str
    prompt: str
    """The user turn the model was asked, the prompt of every pair."""
    samples: list[Sample]


class PairsCard(ExportCard, SpendReport):
    """The dataset card beside a pairs file: an `ExportCard` (format dpo) with the sampling,
    and what the run that wrote it spent (`SpendReport`: the cache, cost, budget stop).

    `sessions_seen` counts the selected problems, `sessions_exported` those that gave a
    pair, `skipped` the others by reason (`NO_PAIR_REASONS`).
    """

    dataset: str = ""
    samples_file: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)
    problems_sampled: int = 0
    samples: int = 0
    correct_samples: int = 0
    unanswered_samples: int = 0
    """Samples with no extractable final answer (graded wrong)."""
    truncated_samples: int = 0
    """Samples cut by max_new_tokens."""
    failed_requests: int = 0
    """Requests that failed in the run that wrote this card; their problems are retried."""


def samples_path(out: Path) -> Path:
    """Where the samples of a pairs file go: `pairs.jsonl` → `pairs.samples.jsonl`."""
    return out.with_name(f"{out.stem}.samples.jsonl")


def manifest_path(out: Path) -> Path:
    """Where the sampling settings go: `pairs.jsonl` → `pairs.sampling.json`."""
    return out.with_name(f"{out.stem}.sampling.json")


def spend_prefix(out: Path) -> str:
    """What goes before the names of the cache and spend files beside a pairs file:
    `pairs.jsonl` → `pairs.` (`pairs.cache/`, `pairs.cache.json`, `pairs.spend.json`)."""
    return f"{out.stem}."


def derived_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from `seed` and `parts`, stable across runs and machines
    (Python's `hash` of a string is salted per process, so it cannot serve)."""
    key = ":".join(str(part) for part in (seed, *parts)).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def _distinct(samples: Iterable[Sample]) -> list[Sample]:
    """First occurrence of each text: a pair of two copies teaches nothing twice."""
    seen: set[str] = set()
    out: list[Sample] = []
    for sample in samples:
        if sample.text not in seen:
            seen.add(sample.text)
            out.append(sample)
    return out


def draw_pairs(
    record: ProblemSamples, *, pairs: int, seed: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The DPO rows of one problem, or why it has none.

    Distinct correct and incorrect answers are each shuffled by an RNG seeded from
    `seed` and the problem id (so a problem's pairs do not depend on which others were
    selected), and the first min(#correct, #incorrect, pairs) of each are zipped.

    Returns:
        The rows, and None; or no rows and the reason (one of `NO_PAIR_REASONS`).
    """
    correct = _distinct(s for s in record.samples if s.correct)
    wrong = _distinct(s for s in record.samples if not s.correct)
    if not correct:
        unanswered = all(s.predicted is None for s in record.samples)
        return [], NO_ANSWER if unanswered else ALL_WRONG
    if not wrong:
        return [], ALL_CORRECT
    count = min(len(correct), len(wrong), pairs)
    rng = random.Random(derived_seed(seed, record.id, "pairs"))
    chosen = rng.sample(correct, count)
    rejected = rng.sample(wrong, count)
    prompt = [{"role": "user", "content": record.prompt}]
    rows = [
        {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": good.text}],
            "rejected": [{"role": "assistant", "content": bad.text}],
        }
        for good, bad in zip(chosen, rejected, strict=True)
    ]
    return rows, None


def write_pairs(
    out: Path,
    problems: Sequence[ProblemRecord],
    records: Mapping[str, ProblemSamples],
    options: PairsOptions,
    *,
    dataset: str,
    failed_requests: int = 0,
    spend: SpendReport | None = None,
    left_for_later: Collection[str] = (),
) -> PairsCard:
    """Draw the pairs of `problems` from their samples; write them and the card atomically.

    Args:
        out: The JSONL file of pairs; its card goes to `card_path(out)`.
        problems: The selected problems, in the order their pairs are written.
        records: Samples by problem id; a problem without any is counted as not sampled.
        options: The pair count, seed and the sampling settings the card records.
        dataset: The dataset file, as the card names it.
        failed_requests: Requests that failed in this run, for the card.
        spend: What this run's requests did and cost, and why it stopped, for the card.
        left_for_later: Ids of the problems the budget cut short (counted apart from
            those whose requests failed).

    Returns:
        The card, as written.
    """
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    card = PairsCard(
        file=str(out),
        format="dpo",
        layout=None,
        models={"policy": [options.model]},
        filters={"pairs_per_problem": options.pairs_per_problem, "seed": options.seed},
        instruction=options.instruction,
        dataset=dataset,
        samples_file=str(samples_path(out)),
        sampling=options.manifest(),
        failed_requests=failed_requests,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **dict(spend or SpendReport()),
    )
    for problem in problems:
        card.sessions_seen += 1
        record = records.get(problem.session_id)
        if record is None:
            skipped[LEFT_FOR_LATER if problem.session_id in left_for_later else NOT_SAMPLED] += 1
            continue
        card.problems_sampled += 1
        card.samples += len(record.samples)
        card.correct_samples += sum(s.correct for s in record.samples)
        card.unanswered_samples += sum(s.predicted is None for s in record.samples)
        card.truncated_samples += sum(s.finish_reason == "length" for s in record.samples)
        drawn, reason = draw_pairs(record, pairs=options.pairs_per_problem, seed=options.seed)
        if reason is not None:
            skipped[reason] += 1
            continue
        rows.extend(drawn)
        card.sessions_exported += 1
        card.session_ids.append(problem.session_id)
    card.rows = len(rows)
    card.skipped = {reason: skipped[reason] for reason in NO_PAIR_REASONS if skipped[reason]}
    write_atomic(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    write_atomic(card_path(out), card.model_dump_json(indent=2) + "\n")
    return card
