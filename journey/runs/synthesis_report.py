"""What a synthesis run did: `SynthesisReport`, the live counts behind it
(`SynthesisTally`), and the yield as the progress line and the summary show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, computed_field

from journey.protocols import Outcome
from journey.runs.rundir import SessionSummary

__all__ = ["SynthesisReport", "SynthesisTally", "yield_text"]


class SynthesisReport(BaseModel):
    """What a synthesis run did. Outcome counts cover every finished session of the
    selection (earlier runs included); tokens and time cover this run only."""

    run_dir: str
    strategy: str
    sessions: int
    """Problems selected."""
    skipped: int = 0
    """Sessions already finished and indexed before this run."""
    resumed: int = 0
    """Unfinished sessions continued from their logs."""
    reindexed: int = 0
    """Sessions whose log had ended but which were not indexed yet."""
    restarted: int = 0
    """Sessions whose log could not be replayed: kept aside, started again."""
    retried: int = 0
    """Sessions that had ended as `model_error`, run again (their old log kept aside)."""
    ran: int = 0
    """Sessions that ended in this run (resumed ones included)."""
    crashed: int = 0
    """Sessions stopped by an unexpected error; their logs are left to resume."""
    solved: int = 0
    unverified: int = 0
    failed: int = 0
    errors: int = 0
    """Sessions that ended as `model_error` (a backend kept failing): not in the yield, and
    run again by the next run unless errors are kept."""
    generated_tokens: int = 0
    prompt_tokens: int = 0
    wall_time: float = 0.0
    dataset_issues: int = 0
    retries: int = 0
    """Requests the backends retried in this run (timeouts, 429, 5xx...)."""
    retries_by_cause: dict[str, int] = {}
    endpoints: dict[str, list[dict[str, Any]]] = {}
    """Per role with several endpoints, what each did: requests, failures, whether it
    was in the rotation at the end, its last fault."""
    cache: dict[str, dict[str, int]] = {}
    """What each role's response cache did in this run (`SpendReport.cache`; the four
    fields from here are the run's `RequestAccounts` report's)."""
    spend: dict[str, dict[str, Any]] = {}
    """Per role, what reached its model in this run and its cost (`SpendReport.spend`)."""
    cost_usd: float | None = None
    """Every role's cost in this run; None when a role has no price."""
    stopped: str | None = None
    """Why the run stopped before every session finished (a budget spent), in one line."""
    problems: list[str] = []
    """One line per crashed or restarted session."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def finished(self) -> int:
        return self.solved + self.unverified + self.failed + self.errors

    @computed_field  # type: ignore[prop-decorator]
    @property
    def yield_rate(self) -> float:
        """Solved sessions per session that finished without an error."""
        judged = self.finished - self.errors
        return self.solved / judged if judged else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of this run's wall time."""
        return self.generated_tokens / self.wall_time if self.wall_time > 0 else 0.0


def yield_text(solved: int, finished: int, errors: int, *, rate: bool = False) -> str:
    """The yield as the progress line and the summary show it: solved over the sessions
    that finished without an error, the errors beside it (e.g. `4/6 · 2 errors`)."""
    judged = finished - errors
    text = f"{solved}/{judged}"
    if rate:
        text = f"{solved / judged if judged else 0.0:.1%} ({text})"
    return text + (f" · {errors} error{'' if errors == 1 else 's'}" if errors else "")


@dataclass
class SynthesisTally:
    """Live counts behind the progress bar and the report."""

    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    generated: int = 0
    prompt: int = 0
    ran: int = 0
    crashed: int = 0

    def count(self, summary: SessionSummary) -> None:
        self.outcomes[Outcome(summary.outcome)] += 1

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())

    @property
    def yield_text(self) -> str:
        return yield_text(
            self.outcomes[Outcome.SOLVED], self.finished, self.outcomes[Outcome.ERROR]
        )
