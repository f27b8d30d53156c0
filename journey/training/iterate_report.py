"""The report of `journey iterate` (`OUT/report.json`): rounds and arms compared.

Per round: the synthesis (yield, tokens per verified long thought, reflections), the
rows of each set, the models trained, and every evaluation on the held-out problems:
accuracy with its 95% Wilson interval, the difference from the round's starting policy
on the problems both answered with its 95% paired-bootstrap interval, reflection and
backtrack rates, output length. `gaps` compares each model with the first arm's model
of the same seed (journey against shortcut, with the default arms) the same way.
`arms` and `arm_gaps` take each arm over its seeds (`iterate_arms_report`): accuracy
with a bootstrap interval over problems, the gap to the first arm paired by problem and
seed, self-correction and reflection-marker rates, output length, the rows and tokens
trained on; `seconds` is each step's wall time. Everything is read back from the
round's folders, with the helpers `journey stats` and `journey eval compare` use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, computed_field

from journey.evaluation.compare import compare_runs, wilson_interval
from journey.evaluation.metrics import compute_metrics
from journey.evaluation.runner import load_records, recorded_model
from journey.exports.export import card_path, load_card
from journey.runs.stats import read_run, run_stats
from journey.training.iterate_arms_report import RESAMPLES, ArmGap, ArmRow, arm_gaps, arm_rows
from journey.training.iterate_records import RoundRecord, model_name
from journey.training.iterate_settings import BASE
from journey.training.trained_on import seen_problems, training_data

__all__ = [
    "RESAMPLES",
    "ArmGap",
    "ArmRow",
    "EvalRow",
    "Gap",
    "IterateReport",
    "ModelRow",
    "RoundReport",
    "SetRow",
    "SynthRow",
    "build_report",
    "eval_row",
    "overlap_notes",
]


class SynthRow(BaseModel):
    """A round's synthesis, as `journey stats` sums it up."""

    run: str
    sessions: int
    finished: int
    solved: int
    yield_rate: float | None
    tokens_per_solved: float | None
    """Prompt and completion tokens of every role per verified long thought."""
    completion_tokens_per_solved: float | None
    mean_reflections: float | None
    mean_backtracks: float | None


class SetRow(BaseModel):
    """A training set a round exported (or pairs it sampled), from its card."""

    name: str
    file: str
    rows: int
    sessions: int
    """Sessions (for pairs: problems) that gave rows."""


class ModelRow(BaseModel):
    """A model a round trained."""

    name: str
    kind: str
    spec: str
    directory: str
    start: str
    data: list[str]
    arm: str | None = None
    seed: int | None = None
    rows: int | None = None
    """Rows it trained on, every phase together (None: not recorded, or DPO)."""
    tokens: int | None = None
    """Tokens of those rows that the loss is computed on."""
    seconds: float | None = None
    """Wall time of its training."""


class EvalRow(BaseModel):
    """One model on the held-out problems."""

    name: str
    """`base` (the round's starting policy), an arm, or ARM-dpo."""
    model: str
    directory: str
    problems: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    difference: float | None = None
    """Accuracy minus the base's on the problems both answered (None for the base)."""
    diff_low: float | None = None
    diff_high: float | None = None
    reflection_rate: float
    backtrack_rate: float
    mean_output_tokens: float
    no_answer_rate: float
    trained_on: int | None = None
    """Of `problems`, those standing in the model's training data (`trained_on`): 0 for
    held-out problems; None where what the model trained on is unknown, so unchecked."""


class Gap(BaseModel):
    """A model's accuracy minus the reference arm's, paired on shared problems."""

    name: str
    reference: str
    shared: int
    difference: float
    low: float
    high: float


class RoundReport(BaseModel):
    round: int
    policy: str
    critic: str | None
    synth: SynthRow
    sets: list[SetRow]
    pairs: list[SetRow]
    models: list[ModelRow]
    evals: list[EvalRow]
    gaps: list[Gap]
    notes: list[str]
    arms: list[ArmRow] = []
    """Each arm over its seeds (`iterate_arms_report`)."""
    arm_gaps: list[ArmGap] = []
    seconds: dict[str, float] = {}
    """Wall time of each step that recorded it: synth, train NAME, eval NAME."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def wall_seconds(self) -> float:
        """The steps' wall time together (steps reused from an earlier round not counted)."""
        return sum(self.seconds.values())


class IterateReport(BaseModel):
    """What `journey iterate --json` prints and `OUT/report.json` holds."""

    out: str
    rounds: list[RoundReport]
    resamples: int = RESAMPLES
    seed: int = 0


def _synth_row(run: Path) -> SynthRow:
    stats = run_stats(read_run(run), keywords=())
    return SynthRow(
        run=str(run),
        sessions=stats.sessions,
        finished=stats.finished,
        solved=stats.solved,
        yield_rate=stats.yield_rate,
        tokens_per_solved=stats.tokens_per_solved,
        completion_tokens_per_solved=stats.completion_tokens_per_solved,
        mean_reflections=stats.mean_reflections,
        mean_backtracks=stats.mean_backtracks,
    )


def _set_row(name: str, file: Path) -> SetRow:
    card = load_card(card_path(file))
    return SetRow(name=name, file=str(file), rows=card.rows, sessions=card.sessions_exported)


def eval_row(name: str, directory: Path) -> EvalRow:
    """The report's row of the evaluation in `directory`."""
    records = load_records(directory)
    model = recorded_model(directory)
    metrics = compute_metrics(records, model=model, dataset="")
    low, high = wilson_interval(metrics.correct, metrics.problems)
    return EvalRow(
        name=name,
        model=model,
        directory=str(directory),
        problems=metrics.problems,
        correct=metrics.correct,
        accuracy=metrics.accuracy,
        ci_low=low,
        ci_high=high,
        reflection_rate=metrics.reflection_rate,
        backtrack_rate=metrics.backtrack_rate,
        mean_output_tokens=metrics.mean_output_tokens,
        no_answer_rate=metrics.no_answer_rate,
        trained_on=_trained_on(model, [record.problem for record in records]),
    )


def _trained_on(spec: str, problems: list[str]) -> int | None:
    data = training_data(spec)
    return None if data.missing else len(seen_problems(problems, data.files))


def overlap_notes(evals: list[EvalRow]) -> list[str]:
    """A line for each evaluation that is not on held-out problems, or not known to be."""
    notes = []
    for row in evals:
        if row.trained_on is None:
            notes.append(f"{row.name}: what it trained on is unknown; not checked for overlap")
        elif row.trained_on:
            notes.append(
                f"{row.name}: {row.trained_on} of {row.problems} evaluated problems stand in "
                "its training data: not held out"
            )
    return notes


def _evals(record: RoundRecord) -> list[EvalRow]:
    rows = {name: eval_row(name, directory) for name, directory in record.evals.items()}
    if BASE in record.evals and len(record.evals) > 1:
        names = [name for name in record.evals if name != BASE]
        directories = [record.evals[BASE], *(record.evals[name] for name in names)]
        compared = compare_runs(directories, resamples=RESAMPLES, seed=0)
        for name, run in zip(names, compared.runs[1:], strict=True):
            rows[name].difference = run.difference
            rows[name].diff_low, rows[name].diff_high = run.ci_low, run.ci_high
    return list(rows.values())


def _gaps(record: RoundRecord) -> list[Gap]:
    """Each model against the first arm's model with the same seed."""
    models = [m for m in record.models.values() if m.name in record.evals]
    if not models:
        return []
    first = models[0].arm
    gaps = []
    for model in models:
        reference = model_name(first, model.seed)
        if model.name == reference or reference not in record.evals:
            continue
        compared = compare_runs(
            [record.evals[reference], record.evals[model.name]], resamples=RESAMPLES, seed=0
        )
        run = compared.runs[1]
        assert run.difference is not None and run.ci_low is not None and run.ci_high is not None
        gaps.append(
            Gap(
                name=model.name,
                reference=reference,
                shared=run.shared,
                difference=run.difference,
                low=run.ci_low,
                high=run.ci_high,
            )
        )
    return gaps


def round_report(record: RoundRecord) -> RoundReport:
    """One round's numbers, read from its folders."""
    evals = _evals(record)
    return RoundReport(
        round=record.number,
        policy=record.policy.spec,
        critic=record.critic.spec if "critic" in record.roles else None,
        synth=_synth_row(record.synth),
        sets=[_set_row(name, file) for name, file in record.sets.items()],
        pairs=[_set_row(f"pairs {arm}", file) for arm, file in record.pairs.items()],
        models=[
            ModelRow(
                name=model.name,
                kind=model.kind,
                spec=model.ref.spec,
                directory=str(model.out),
                start=model.start,
                data=list(model.data),
                arm=model.arm,
                seed=model.seed,
                rows=model.rows,
                tokens=model.tokens,
                seconds=model.seconds,
            )
            for model in record.models.values()
        ],
        evals=evals,
        gaps=_gaps(record),
        notes=[*record.notes, *overlap_notes(evals)],
        arms=arm_rows(record),
        arm_gaps=arm_gaps(record),
        seconds=dict(record.seconds),
    )


def build_report(records: list[RoundRecord], out: Path) -> IterateReport:
    """The report of an iteration's rounds."""
    return IterateReport(out=str(out), rounds=[round_report(record) for record in records])
