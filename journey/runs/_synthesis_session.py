"""The unit of work of a synthesis run: one session run (or continued) and saved.

`SessionWork` holds what every session of a run shares (the run directory, the
strategy's session class, the agents, the report and the live counts); `run` starts a
session afresh or restores it from its log, appends each event as it happens, and
saves the finished session (one the run's budget cut at a turn boundary is left
unsaved, its log open, and raises `LeftForLater`); `reindex` saves a session whose log
ended before it was indexed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from journey.agents import AnswerVerifier, PolicyAgent, StepJudge
from journey.problems.dataset import ProblemRecord
from journey.protocols import (
    CriticVerdictGiven,
    ExpansionRejected,
    PolicyStepProposed,
    ProblemPosed,
    SessionEnded,
    SessionEvent,
    StopReason,
)
from journey.runs._synthesis_resume import SessionPlan, keep_error_log, restart
from journey.runs.jobs import LeftForLater
from journey.runs.rundir import RunDirectory
from journey.runs.synthesis_options import SynthesisOptions
from journey.runs.synthesis_report import SynthesisReport, SynthesisTally
from journey.sessions.base import RestoreError, Session, SessionResult
from journey.sessions.stop_conditions import StopRequested

__all__ = ["SessionWork"]


@dataclass
class SessionWork:
    """What the sessions of one synthesis run share, and the work on one of them."""

    run: RunDirectory
    options: SynthesisOptions
    session_type: type[Session]
    models: dict[str, str]
    """Model spec per role the strategy asks, as the logs record them."""
    policy: PolicyAgent
    critic: StepJudge | None
    report: SynthesisReport
    tally: SynthesisTally
    halted: Callable[[], bool] = lambda: False
    """True once the run stops spending (a budget): sessions stop at their next turn
    boundary, their logs left open for the next run."""

    def reindex(self, record: ProblemRecord, events: list[SessionEvent]) -> bool:
        """Save and index a session whose log ended before it was indexed.

        Returns False when the log cannot be rebuilt: it is set aside, to be run again
        rather than index something wrong.
        """
        try:
            session = self.session_type.restore(events, policy=self.policy, critic=self.critic)
        except RestoreError as error:
            restart(self.run, record, self.report, f"cannot rebuild its log ({error})")
            return False
        result = SessionResult(session.session_id, session.tree, session.events)
        self.tally.count(self.run.save(result))
        self.report.reindexed += 1
        return True

    async def run_session(self, plan: SessionPlan, refresh: Callable[[], None]) -> SessionEnded:
        """Run (or continue) one session and save it; returns how it ended.

        `refresh` is called as tokens are generated, for the progress line.
        """
        run, report, tally = self.run, self.report, self.tally
        policy, critic = self.policy, self.critic
        record = plan.record
        if plan.retry:
            keep_error_log(run, record.session_id)
            report.retried += 1
        session: Session | None = None
        posed = plan.events[0] if plan.events else None
        if isinstance(posed, ProblemPosed) and (
            posed.problem != record.problem or posed.gold_answer != record.answer
        ):
            restart(run, record, report, "its log is about another problem or answer")
        elif plan.events:
            try:
                session = self.session_type.restore(
                    plan.events,
                    policy=policy,
                    critic=critic,
                    limits=self.options.limits,
                    verifier=AnswerVerifier.for_problem(record.answer, record.meta),
                    models=self.models,
                )
                report.resumed += 1
            except RestoreError as error:
                restart(run, record, report, f"cannot continue its log ({error})")
        if session is None:
            session = self.session_type(
                record.problem,
                gold_answer=record.answer,
                verifier=AnswerVerifier.for_problem(record.answer, record.meta),
                policy=policy,
                critic=critic,
                limits=self.options.limits,
                session_id=record.session_id,
                models=self.models,
                config={
                    **self.options.strategy_config,
                    "index": record.index,
                    "meta": record.meta,
                },
            )
        # After the session's own limits, so one that reached them ends for that reason.
        session.stop_when = session.stop_condition() | StopRequested(self.halted)
        with run.event_log(record.session_id) as log:

            def on_event(event: SessionEvent) -> None:
                if isinstance(event, SessionEnded) and event.stop_reason is StopReason.CANCELLED:
                    return  # interrupted, not ended: the log stays open for a resume
                log.write(event)
                if isinstance(event, PolicyStepProposed | CriticVerdictGiven | ExpansionRejected):
                    tally.generated += event.usage.completion_tokens
                    tally.prompt += event.usage.prompt_tokens
                    refresh()

            result = await session.run(on_event)
        if result.ended.stop_reason is StopReason.CANCELLED:
            raise LeftForLater(record.session_id)  # cut by the budget: resumed next run
        tally.count(run.save(result))
        tally.ran += 1
        return result.ended
