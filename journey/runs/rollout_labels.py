"""Rollout labels for a finished run: `journey label RUN --rollouts 8 --model SPEC`.

Every step of every finished session (final answers aside: the verifier has judged
those) is rolled out as Math-Shepherd does (`journey.agents.rollout_judge`): the model
finishes the solution from it n times and the answers are checked. Each estimate is a
line of `labels/rollouts.jsonl`, appended as soon as it is known, so a killed job
resumes where it stopped; `labels/label.json` is the job's manifest (the judge: model
and settings), which a later job must share unless forced, so one run's estimates are
all alike. Exports read the file back: PRM rows carry the estimates beside the
critic's labels, each with its source.

A session with no gold answer has nothing to check completions against: it is
skipped and counted, never labelled. A step the model failed on is counted and left
for the next job; failures in a row stop the job (a dead server), as they stop synth.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from journey.agents import AnswerVerifier, RolloutJudge, RolloutSpec, StepUnderReview
from journey.errors import ConfigError, error_line
from journey.protocols import ProblemPosed, RolloutTally, TokenUsage
from journey.runs.jobs import AppendedResults, JobControls, JobProgress, run_job
from journey.runs.manifest import Manifest
from journey.runs.rundir import RunDirectory, read_event_log
from journey.sessions.tree import ReasoningTree

logger = logging.getLogger(__name__)

__all__ = [
    "LABELS_DIR",
    "ROLLOUT_LABELS",
    "LabelReport",
    "RunRollouts",
    "StepRollout",
    "label_run",
    "read_rollouts",
]

LABELS_DIR = "labels"
"""Where relabelling passes write, in the run directory."""
ROLLOUT_LABELS = "rollouts.jsonl"
"""One `StepRollout` per line, in `labels/`."""
_MANIFEST = "label.json"


class StepRollout(BaseModel):
    """One line of `labels/rollouts.jsonl`: the rollouts from one step."""

    session_id: str
    node_id: int
    judge: str
    """The rollout spec that made the estimate (`rollout:MODEL?n=8&...`)."""
    tally: RolloutTally
    usage: TokenUsage = TokenUsage()


@dataclass(frozen=True)
class RunRollouts:
    """A run's rollout estimates, by session and step, and the judge that made them."""

    judge: str | None = None
    sessions: Mapping[str, Mapping[int, RolloutTally]] = field(default_factory=dict)
    """Session id -> step (node id) -> its tally."""
    unreadable: int = 0
    """Lines that could not be read (a job killed mid-line): counted, not used."""

    def has(self, session_id: str, node_id: int) -> bool:
        return node_id in self.sessions.get(session_id, {})


def read_rollouts(root: Path) -> RunRollouts:
    """The estimates in `root/labels/rollouts.jsonl`; empty when the run has none."""
    path = root / LABELS_DIR / ROLLOUT_LABELS
    if not path.is_file():
        return RunRollouts()
    sessions: dict[str, dict[int, RolloutTally]] = {}
    judges: set[str] = set()
    unreadable = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            step = StepRollout.model_validate_json(line)
        except ValidationError:
            unreadable += 1
            continue
        sessions.setdefault(step.session_id, {})[step.node_id] = step.tally
        judges.add(step.judge)
    if unreadable:
        logger.warning("%d unreadable line(s) in %s were skipped", unreadable, path)
    judge = ", ".join(sorted(judges)) if judges else None
    return RunRollouts(judge=judge, sessions=sessions, unreadable=unreadable)


class LabelReport(BaseModel):
    """What a labelling job did, earlier jobs' work included in `steps`."""

    run_dir: str
    judge: str
    sessions: int = 0
    """Finished sessions with a gold answer."""
    steps: int = 0
    """Their steps to label (final answers aside)."""
    already: int = 0
    """Steps an earlier job labelled."""
    labelled: int = 0
    """Steps this job labelled."""
    errors: int = 0
    """Steps the model failed on; the next job tries them again."""
    error_messages: list[str] = []
    skipped: dict[str, int] = {}
    """Sessions left out, by reason."""
    usage: TokenUsage = TokenUsage()
    wall_time: float = 0.0
    stopped: str | None = None
    """Why the job stopped early (the model failed on step after step); None: it did not."""


@dataclass(frozen=True)
class _StepJob:
    session_id: str
    node_id: int
    review: StepUnderReview


def _session_steps(run: RunDirectory, session_id: str) -> tuple[list[_StepJob], str | None]:
    """The steps of one session to roll out, or why the session has none."""
    folder = run.session_dir(session_id)
    try:
        events = read_event_log(folder / "events.jsonl").events
        tree = ReasoningTree.load(folder / "tree.json")
    except (OSError, ValueError) as error:
        return [], f"unreadable ({type(error).__name__})"
    posed = next((e for e in events if isinstance(e, ProblemPosed)), None)
    if posed is None or posed.gold_answer is None:
        return [], "no gold answer"
    meta = posed.config.get("meta")
    verifier = AnswerVerifier.for_problem(
        posed.gold_answer, meta if isinstance(meta, Mapping) else {}
    )
    jobs: list[_StepJob] = []
    for node in tree:
        if node.id == tree.root.id or node.is_final:
            continue
        path = tree.path(node.id)[1:]
        review = StepUnderReview(
            problem=tree.problem,
            previous_steps=[n.text for n in path[:-1]],
            step_number=node.depth,
            text=node.text,
            verifier=verifier,
        )
        jobs.append(_StepJob(session_id, node.id, review))
    return jobs, None


async def label_run(
    run: RunDirectory,
    judge: RolloutJudge,
    spec: RolloutSpec,
    *,
    concurrency: int = 4,
    progress: JobProgress | None = None,
    force: bool = False,
) -> LabelReport:
    """Roll out every unlabelled step of `run`'s finished sessions; resumable.

    Args:
        run: The run directory.
        judge: Completes and checks solutions.
        spec: The judge as the run records it.
        concurrency: Steps in flight at once (each asks `n` completions at once).
        progress: Told of each step done.
        force: Label with another judge than the run's earlier labels (the old ones are
            set aside as `rollouts.<time>.jsonl`, so one file holds one judge's).

    Raises:
        ConfigError: `concurrency` is below 1, or the run was labelled by another judge
            (without `force`).
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency!r}")
    controls = JobControls.of(progress=progress, force=force)
    folder = run.root / LABELS_DIR
    folder.mkdir(exist_ok=True)
    changes = Manifest("label", {"judge": str(spec)}).open(
        folder / _MANIFEST,
        subject=f"{run.root} holds rollout labels",
        force=controls.force,
        remedy="use the same model and settings, or --force to start the labels again",
    )
    path = folder / ROLLOUT_LABELS
    if changes and path.exists():
        path.rename(path.with_name(f"rollouts.{int(time.time())}.jsonl"))
    done = read_rollouts(run.root)
    report = LabelReport(run_dir=str(run.root), judge=str(spec))
    skipped: Counter[str] = Counter()
    todo: list[_StepJob] = []
    for summary in dict.fromkeys(s.session_id for s in run.summaries()):
        steps, why = _session_steps(run, summary)
        if why is not None:
            skipped[why] += 1
            continue
        report.sessions += 1
        report.steps += len(steps)
        for step in steps:
            if done.has(step.session_id, step.node_id):
                report.already += 1
            else:
                todo.append(step)
    report.skipped = dict(sorted(skipped.items()))
    started = time.monotonic()

    async def one(step: _StepJob) -> str | None:
        verifier = step.review.verifier
        assert verifier is not None  # `_session_steps` gives every step one
        try:
            tally, usage, _ = await judge.roll_out(step.review, verifier)
        except Exception as error:  # a model fault: count it, leave the step for later
            report.error_messages.append(f"{step.session_id}#{step.node_id}: {error_line(error)}")
            return results.failed(f"rollouts from {step.session_id} step {step.node_id}", error)
        results.add(
            StepRollout(
                session_id=step.session_id,
                node_id=step.node_id,
                judge=str(spec),
                tally=tally,
                usage=usage,
            )
        )
        report.labelled += 1
        report.usage = report.usage + usage
        return None

    with AppendedResults[StepRollout](path, log=logger) as results:
        stop = await run_job(todo, one, concurrency=concurrency, controls=controls)
    report.errors = results.errors
    if stop is not None:
        report.stopped = (
            f"{stop.count} steps failed in a row ({stop.error}); fix the model and run "
            "the same command again to go on"
        )
    report.wall_time = round(time.monotonic() - started, 3)
    return report
