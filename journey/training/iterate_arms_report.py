"""Arms compared over seeds: what `journey iterate`'s report says of each arm.

An arm trained once per seed (`training.seeds`) is one treatment measured several
times. Per arm, over its seeds' evaluations on the held-out problems:

- accuracy: the mean over seeds, and its 95% interval from a bootstrap over problems
  with the seeds kept (each problem's score is its mean over the seeds; problems are
  resampled), plus each seed's own accuracy, so the spread between seeds shows;
- the gap to the first arm (journey − shortcut, with the default arms), paired by
  problem and seed: each problem's difference is the mean over seeds of this arm's
  correctness minus the first arm's with the same seed; the same bootstrap gives its
  interval. Only problems every model of both arms graded count;
- the self-correction rate (`self_correction`): outputs that reflect after a wrong
  intermediate result and end correct, and how many outputs had arithmetic to check;
- the reflection-marker rate and the mean output length in tokens;
- the rows and tokens each seed's model trained on, and the wall time of its
  training and evaluation.

A DPO model is an arm of its own here (`journey-dpo`). Resamples: `RESAMPLES`, seed 0,
as `journey eval compare`.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from journey.evaluation.metrics import EvalRecord
from journey.evaluation.runner import load_records
from journey.evaluation.self_correction import self_correction
from journey.training.iterate_records import RoundRecord, TrainedModel, model_name

__all__ = ["RESAMPLES", "ArmGap", "ArmRow", "SeedRow", "arm_gaps", "arm_rows"]

RESAMPLES = 2000
"""Bootstrap resamples of each interval (seed 0), as `journey eval compare`."""


class SeedRow(BaseModel):
    """One seed's model of an arm."""

    seed: int | None
    model: str
    """The model's name in the round (`journey-seed2`)."""
    problems: int
    correct: int
    accuracy: float
    rows: int | None
    """Rows it trained on (every phase), as recorded by its training."""
    tokens: int | None
    """Tokens of those rows the loss is computed on."""
    train_seconds: float | None
    eval_seconds: float | None


class ArmRow(BaseModel):
    """An arm over its seeds."""

    arm: str
    seeds: list[SeedRow]
    problems: int
    """Problems graded for every seed (what the interval resamples)."""
    accuracy: float
    """Mean over seeds and problems."""
    ci_low: float
    ci_high: float
    seed_sd: float | None
    """Standard deviation of the seeds' accuracies (None with one seed)."""
    self_correction_rate: float
    checked_share: float
    """Share of outputs whose arithmetic could be checked for a wrong intermediate claim."""
    marker_rate: float
    """Share of outputs with a reflection or correction marker."""
    mean_output_tokens: float
    mean_rows: float | None
    mean_tokens: float | None
    train_seconds: float
    eval_seconds: float


class ArmGap(BaseModel):
    """An arm's accuracy minus the reference arm's, paired by problem and seed."""

    arm: str
    reference: str
    problems: int
    seeds: int
    difference: float
    low: float
    high: float


def _bootstrap(values: Sequence[float], *, seed: int = 0) -> tuple[float, float, float]:
    """Mean of `values` and its 95% percentile-bootstrap interval (zeros when empty)."""
    count = len(values)
    if count == 0:
        return 0.0, 0.0, 0.0
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=count)) / count for _ in range(RESAMPLES))
    low = means[int(0.025 * (RESAMPLES - 1))]
    high = means[int(0.975 * (RESAMPLES - 1))]
    return sum(values) / count, low, high


def _groups(record: RoundRecord) -> dict[str, list[TrainedModel]]:
    """The evaluated models of each arm (a DPO arm apart), in training order."""
    groups: dict[str, list[TrainedModel]] = {}
    for model in record.models.values():
        if model.name in record.evals:
            group = model_name(model.arm, None, dpo=model.kind == "dpo")
            groups.setdefault(group, []).append(model)
    return groups


def _by_problem(directory: Path) -> dict[str, EvalRecord]:
    return {r.id: r for r in load_records(directory)}


def _shared(graded: Sequence[dict[str, EvalRecord]]) -> list[str]:
    """Problem ids every evaluation graded, in the first one's order."""
    if not graded:
        return []
    return [key for key in graded[0] if all(key in other for other in graded[1:])]


def _arm_row(arm: str, models: list[TrainedModel], record: RoundRecord) -> ArmRow:
    graded = [_by_problem(record.evals[m.name]) for m in models]
    shared = _shared(graded)
    scores = [sum(g[key].correct for g in graded) / len(graded) for key in shared]
    accuracy, low, high = _bootstrap(scores)
    seeds = []
    for model, records in zip(models, graded, strict=True):
        correct = sum(r.correct for r in records.values())
        seeds.append(
            SeedRow(
                seed=model.seed,
                model=model.name,
                problems=len(records),
                correct=correct,
                accuracy=correct / len(records) if records else 0.0,
                rows=model.rows,
                tokens=model.tokens,
                train_seconds=record.seconds.get(f"train {model.name}"),
                eval_seconds=record.seconds.get(f"eval {model.name}"),
            )
        )
    outputs = [r for g in graded for r in g.values()]
    found = [self_correction(r.output, correct=r.correct) for r in outputs]
    count = len(outputs) or 1
    rows = [m.rows for m in models if m.rows is not None]
    tokens = [m.tokens for m in models if m.tokens is not None]
    return ArmRow(
        arm=arm,
        seeds=seeds,
        problems=len(shared),
        accuracy=accuracy,
        ci_low=low,
        ci_high=high,
        seed_sd=statistics.stdev(s.accuracy for s in seeds) if len(seeds) > 1 else None,
        self_correction_rate=sum(f.corrected for f in found) / count,
        checked_share=sum(f.basis == "claims" for f in found) / count,
        marker_rate=sum(f.marked for f in found) / count,
        mean_output_tokens=sum(r.output_tokens for r in outputs) / count,
        mean_rows=statistics.fmean(rows) if rows else None,
        mean_tokens=statistics.fmean(tokens) if tokens else None,
        train_seconds=sum(s.train_seconds or 0.0 for s in seeds),
        eval_seconds=sum(s.eval_seconds or 0.0 for s in seeds),
    )


def arm_rows(record: RoundRecord) -> list[ArmRow]:
    """Every arm of a round over its seeds (rules in the module docstring)."""
    return [_arm_row(arm, models, record) for arm, models in _groups(record).items()]


def arm_gaps(record: RoundRecord) -> list[ArmGap]:
    """Each arm against the first one, paired by problem and seed."""
    groups = _groups(record)
    if len(groups) < 2:
        return []
    reference, *others = groups
    reference_by_seed = {m.seed: _by_problem(record.evals[m.name]) for m in groups[reference]}
    gaps = []
    for arm in others:
        pairs = [
            (reference_by_seed[m.seed], _by_problem(record.evals[m.name]))
            for m in groups[arm]
            if m.seed in reference_by_seed
        ]
        shared = _shared([g for pair in pairs for g in pair])
        differences = [
            sum(int(mine[key].correct) - int(theirs[key].correct) for theirs, mine in pairs)
            / len(pairs)
            for key in shared
        ]
        difference, low, high = _bootstrap(differences)
        gaps.append(
            ArmGap(
                arm=arm,
                reference=reference,
                problems=len(shared),
                seeds=len(pairs),
                difference=difference,
                low=low,
                high=high,
            )
        )
    return gaps
