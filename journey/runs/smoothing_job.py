"""The smoothing job: every solved session of a run rewritten once, resumably.

Each session's accepted rewrite goes to `transcript.smoothed.md` and its record to
`smoothing.json`; `journey export --transcript smoothed` reads them back. The run's
`smooth.json` is the job's manifest (`journey.runs.manifest`): the rewriter's model and
the checker's settings, which a later run must share unless forced, so that one run's
rewrites are all judged alike.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from journey.errors import ConfigError, error_line
from journey.longthought.smoothing import Smoother, problem_kind
from journey.protocols import TokenUsage
from journey.runs.files import write_atomic
from journey.runs.jobs import JobControls, JobProgress, run_job
from journey.runs.manifest import Manifest
from journey.runs.rundir import RunDirectory

logger = logging.getLogger(__name__)

SMOOTHED_NAME = "transcript.smoothed.md"
"""The accepted rewrite, beside the session's `transcript.md`."""
RECORD_NAME = "smoothing.json"
"""What smoothing did to a session (accepted or why not, tokens); its presence marks it done."""
MANIFEST_NAME = "smooth.json"
"""The job's manifest, in the run directory: the model and checker settings."""


class SmoothingRecord(BaseModel):
    """A session's `smoothing.json`: what smoothing did to it."""

    model: str
    accepted: bool
    reasons: list[str] = Field(default_factory=list)
    draft_chars: int
    rewrite_chars: int
    usage: TokenUsage = Field(default_factory=TokenUsage)
    rejected_rewrite: str | None = None
    """The model's text when rejected, to see what went wrong."""


class SmoothingTally(BaseModel):
    """The state of a run's smoothing after `smooth_run`: earlier runs' sessions included."""

    sessions: int = 0
    """Solved sessions with a transcript."""
    skipped: int = 0
    """Smoothed by an earlier run (accepted or rejected), so not redone."""
    accepted: int = 0
    rejected: int = 0
    rejected_by_kind: dict[str, int] = Field(default_factory=dict)
    """Rejections per kind of problem; one rejection may count under several kinds."""
    errors: int = 0
    """Sessions the model failed on this time; the next run tries them again."""
    error_messages: list[str] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    """Tokens spent by this run."""


def accepted_smoothed(folder: Path) -> str | None:
    """A session's rewrite that `journey smooth` accepted; None when there is none (not
    smoothed, rejected, or its record damaged: the draft is the long thought then)."""
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
        if record.get("accepted") is True:
            return (folder / SMOOTHED_NAME).read_text(encoding="utf-8").strip() or None
    except (OSError, ValueError, AttributeError):
        pass
    return None


def smoothing_records(run: RunDirectory) -> tuple[list[str], dict[str, SmoothingRecord]]:
    """The solved sessions with a transcript: those not smoothed yet, in index order, and
    the records of those that were. A damaged record counts as not smoothed."""
    todo: list[str] = []
    done: dict[str, SmoothingRecord] = {}
    solved = (s.session_id for s in run.summaries() if s.outcome == "solved")
    for session_id in dict.fromkeys(solved):
        folder = run.session_dir(session_id)
        if not (folder / "transcript.md").exists():
            continue
        try:
            done[session_id] = SmoothingRecord.model_validate_json(
                (folder / RECORD_NAME).read_bytes()
            )
        except FileNotFoundError:
            todo.append(session_id)
        except ValidationError:
            logger.warning("damaged %s in session %s: smoothing it again", RECORD_NAME, session_id)
            todo.append(session_id)
    return todo, done


async def smooth_run(
    run: RunDirectory,
    smoother: Smoother,
    *,
    model: str,
    concurrency: int = 4,
    limit: int | None = None,
    progress: JobProgress | None = None,
    force: bool = False,
) -> SmoothingTally:
    """Smooth every solved session of `run` not smoothed yet; resumable.

    Each session's accepted rewrite goes to `transcript.smoothed.md`, and its record
    (accepted, reasons, usage) to `smoothing.json`, both written atomically, the record
    last, so a session cut off between them is simply redone. A model error is
    counted and logged and leaves the session to the next run. `smooth.json` records
    the model and checker settings; a run with others is refused unless forced.

    Args:
        run: The run directory.
        smoother: Rewrites and checks each draft.
        model: The smoother's model spec, recorded with each session.
        concurrency: Sessions in flight at once.
        limit: Smooth at most this many sessions.
        progress: Told of each session done.
        force: Go on with another model or checker settings than the run's earlier
            smoothing (its sessions then mix them).

    Raises:
        ConfigError: `concurrency` is below 1, or the run was smoothed with other
            settings (without `force`).
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency!r}")
    # Errors are counted, never a reason to stop: smoothing has no endpoint check.
    controls = JobControls.of(progress=progress, force=force, max_consecutive_errors=0)
    settings = {
        "model": model,
        "min_length_ratio": smoother.checker.min_length_ratio,
        "max_length_ratio": smoother.checker.max_length_ratio,
        "max_tokens": smoother.max_tokens,
    }
    Manifest("smooth", settings).open(
        run.root / MANIFEST_NAME,
        subject=f"{run.root} holds smoothing",
        force=controls.force,
        remedy="use the same settings, or --force to mix them",
    )
    todo, done = smoothing_records(run)
    tally = SmoothingTally(sessions=len(todo) + len(done), skipped=len(done))
    kinds: Counter[str] = Counter()
    records = list(done.values())
    if limit is not None:
        todo = todo[: max(limit, 0)]

    async def one(session_id: str) -> str | None:
        folder = run.session_dir(session_id)
        try:
            draft = (folder / "transcript.md").read_text(encoding="utf-8")
            result = await smoother.smooth(draft)
        except Exception as error:  # any model fault: count it, let the others go on
            logger.warning("smoothing session %s failed: %s", session_id, error)
            tally.errors += 1
            tally.error_messages.append(f"{session_id}: {type(error).__name__}: {error}")
            return error_line(error)
        tally.usage = tally.usage + result.usage
        if result.accepted:
            write_atomic(folder / SMOOTHED_NAME, result.text + "\n")
        record = SmoothingRecord(
            model=model,
            accepted=result.accepted,
            reasons=result.reasons,
            draft_chars=len(draft.strip()),
            rewrite_chars=len(result.rewrite),
            usage=result.usage,
            rejected_rewrite=None if result.accepted else result.rewrite,
        )
        write_atomic(folder / RECORD_NAME, record.model_dump_json(indent=2) + "\n")
        records.append(record)
        return None

    await run_job(todo, one, concurrency=concurrency, controls=controls)
    for record in records:
        if record.accepted:
            tally.accepted += 1
        else:
            tally.rejected += 1
            kinds.update({problem_kind(r) for r in record.reasons})
    tally.rejected_by_kind = dict(sorted(kinds.items()))
    return tally
