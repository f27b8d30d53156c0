"""Dataset synthesis: many debate sessions at once, written as they happen, resumable.

`SynthesisRunner` runs one session per problem, `concurrency` at a time, with one
client per model spec (from a `ClientPool`), so concurrent requests to a local
model batch into one forward pass. `policy_concurrency` / `critic_concurrency`
further cap each role's requests in flight (`ConcurrencyLimitedClient`). Only the
roles the strategy asks are built, loaded and recorded (`propose-critique` has no
critic). Every event is appended to its session's log as it happens; a finished
session is saved (tree, transcript, index line). A session whose backend fails
ends as `model_error` and is recorded; anything else that goes wrong in one session
is reported and leaves its log to be resumed, never stopping the others. When
`max_consecutive_errors` sessions in a row end as `model_error` (an endpoint is
down, a URL is wrong, a quota is spent), the run stops instead of failing the rest:
sessions in flight are cancelled, their logs left open, and `EndpointDownError`
names the role's model spec and its last error.

Running again on the same directory resumes:

- a session with a line in `sessions.jsonl` is done: it is skipped, never redone,
  except a `model_error` one (unless `retry_errors` is off): its log is kept aside as
  `events.error-N.jsonl` and it runs again from the start; its new index line
  supersedes the old one, and the index is compacted when the run ends;
- a session whose log ends in `session_ended` (killed before it was indexed) is
  saved and indexed from its log;
- a session whose log stops earlier is restored from its events
  (`DebateSession.restore`) and continues where it stopped, in its own tree;
- a log cut mid-line loses only that line; a log that cannot be replayed is kept
  aside as `events.broken.jsonl` and the session starts again.

`run.json` records the options; resuming with other models, critic mode or
strategy is refused unless forced; concurrency limits may change, as they
never change what a session says. A lock file keeps two processes off one run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient
from filelock import FileLock, Timeout

from journey.agents import DEFAULT_CRITIC_TOKENS, CriticAgent, CriticMode, PolicyAgent
from journey.agents.backends import ClientPool, LoadableClient, parse_model_spec, retry_causes
from journey.errors import ConfigError
from journey.problems.dataset import ProblemRecord
from journey.protocols import (
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    Role,
    SessionEnded,
    SessionEvent,
    StopReason,
)
from journey.runs.endpoint_health import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    EndpointDownError,
    ErrorStreak,
    LastFailure,
    RoleClient,
)
from journey.runs.files import write_atomic
from journey.runs.jobs import JobProgress, NoProgress, StreakStop, run_each
from journey.runs.rundir import RunDirectory, SessionSummary, read_event_log
from journey.runs.synthesis_report import SynthesisReport, yield_text
from journey.sessions.base import DebateLimits, DebateResult, RestoreError, Session
from journey.sessions.strategies import strategy_session

__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_ERRORS",
    "EndpointDownError",
    "ErrorStreak",
    "SynthesisOptions",
    "SynthesisReport",
    "SynthesisRunner",
]

logger = logging.getLogger(__name__)

_LOCK_NAME = ".synth.lock"


@dataclass(frozen=True)
class SynthesisOptions:
    """What a synthesis run does with each problem; recorded in `run.json`."""

    strategy: str = field(default="debate", metadata={"help": "How sessions are run."})
    policy: str = field(default="embedded", metadata={"help": "Model spec of the policy."})
    critic: str = field(default="embedded", metadata={"help": "Model spec of the critic."})
    critic_mode: str = field(
        default="auto",
        metadata={"help": "How the critic decides: auto, generate or score (log-probs)."},
    )
    concurrency: int = field(default=8, metadata={"help": "Sessions running at once."})
    policy_concurrency: int | None = field(
        default=None,
        metadata={"help": "Policy requests in flight at once; None: only sessions bound them."},
    )
    critic_concurrency: int | None = field(
        default=None,
        metadata={"help": "Critic requests in flight at once; None: only sessions bound them."},
    )
    limits: DebateLimits = field(
        default_factory=DebateLimits, metadata={"help": "Turn, depth and token limits."}
    )
    step_tokens: int = field(
        default=160,
        metadata={"help": "Generation limit for one policy step (max_tokens in --policy wins)."},
    )
    critic_tokens: int = field(
        default=DEFAULT_CRITIC_TOKENS,
        metadata={
            "help": "Generation limit for one critic verdict, a reasoning critic's thoughts "
            "included (max_tokens in --critic wins)."
        },
    )
    critic_reasks: int = field(
        default=1, metadata={"help": "How often an unreadable verdict is asked again."}
    )
    strategy_config: Mapping[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Strategy settings given to every session, e.g. beam_width."},
    )

    def __post_init__(self) -> None:
        # Raises on an unknown strategy, or on settings it refuses: checked once here,
        # not in every session.
        strategy_session(self.strategy).check_config(self.strategy_config, self.limits)
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency!r}")
        for role, limit in self.request_limits.items():
            if limit is not None and limit < 1:
                raise ConfigError(f"{role} concurrency must be at least 1, got {limit!r}")
        for name in ("step_tokens", "critic_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.critic_reasks < 0:
            raise ConfigError(f"critic_reasks must be 0 or more, got {self.critic_reasks!r}")
        try:
            CriticMode(self.critic_mode)
        except ValueError:
            raise ConfigError(
                f"critic mode {self.critic_mode!r} is not one of auto, generate, score"
            ) from None

    @property
    def roles(self) -> tuple[Role, ...]:
        """The roles the strategy asks, policy first (`propose-critique`: the policy alone)."""
        asked = strategy_session(self.strategy).roles
        return tuple(role for role in (Role.POLICY, Role.CRITIC) if role in asked)

    @property
    def models(self) -> dict[str, str]:
        """Model spec per role the strategy asks, normalised (so `embedded?seed=1` and its
        reordering match). A role the strategy never asks is neither built nor recorded.

        Raises:
            ModelSpecError: a spec names no backend.
        """
        specs = {Role.POLICY: self.policy, Role.CRITIC: self.critic}
        return {role.value: str(parse_model_spec(specs[role])) for role in self.roles}

    @property
    def request_limits(self) -> dict[str, int | None]:
        """Requests in flight allowed per role; None where only `concurrency` bounds them."""
        return {"policy": self.policy_concurrency, "critic": self.critic_concurrency}

    def record(self) -> dict[str, Any]:
        """The options as `run.json` keeps them."""
        return {
            "strategy": self.strategy,
            "models": self.models,
            "critic_mode": self.critic_mode,
            "concurrency": self.concurrency,
            "policy_concurrency": self.policy_concurrency,
            "critic_concurrency": self.critic_concurrency,
            "limits": asdict(self.limits),
            "step_tokens": self.step_tokens,
            "critic_tokens": self.critic_tokens,
            "critic_reasks": self.critic_reasks,
            **({"strategy_config": dict(self.strategy_config)} if self.strategy_config else {}),
        }


@dataclass
class _Plan:
    """What to do with one problem."""

    record: ProblemRecord
    events: list[SessionEvent] = field(default_factory=list)
    """Logged events to restore from; empty for a fresh start."""
    retry: bool = False
    """The session ended as `model_error`: it starts again, its old log set aside."""


@dataclass
class _Tally:
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


class SynthesisRunner:
    """Runs one session per problem into a run directory, concurrently and resumably.

    Args:
        options: Strategy, models, limits and concurrency.
        progress: Told of each session as it runs and ends (`journey.view.progress`
            draws it); None tells no one.
        clients: A client per role (`policy`, `critic`) to use instead of building them
            from the specs in `options` (tests, callers that hold clients already); the
            specs are still what `run.json` and the logs record, and the role request
            limits in `options` wrap these clients too. Only the roles the strategy asks
            are used.
        force: Resume a run directory whose recorded models or strategy differ.
        retry_errors: Run again the sessions that ended as `model_error`; False keeps
            them as they are.
        max_consecutive_errors: Stop the run (`EndpointDownError`) when this many
            sessions in a row end as `model_error`; 0 never stops.

    Raises:
        ConfigError: `max_consecutive_errors` is negative.
    """

    def __init__(
        self,
        options: SynthesisOptions,
        *,
        progress: JobProgress | None = None,
        clients: Mapping[str, ChatCompletionClient] | None = None,
        force: bool = False,
        retry_errors: bool = True,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        self.options = options
        self.progress = progress or NoProgress()
        self._given_clients = dict(clients) if clients is not None else None
        self.force = force
        self.retry_errors = retry_errors
        self._streak_limit = ErrorStreak(max_consecutive_errors).limit  # validated
        self._models = options.models
        self._session_type = strategy_session(options.strategy)

    async def run(
        self,
        run_dir: Path | str,
        problems: Sequence[ProblemRecord],
        *,
        dataset: Mapping[str, Any] | None = None,
        dataset_issues: int = 0,
    ) -> SynthesisReport:
        """Run (or resume) a session for every problem; returns when all have ended.

        Args:
            run_dir: The run directory; an existing one is resumed.
            problems: The problems, in the order sessions start.
            dataset: Where the problems came from (file, fields, shard...), for `run.json`.
            dataset_issues: How many dataset lines were skipped, for the report.

        Raises:
            ConfigError: the run directory belongs to another kind of run, was made with
                other models or strategy (without `force`), or is in use.
            EndpointDownError: `max_consecutive_errors` sessions in a row ended as
                `model_error`; the run stopped and resumes when run again.
        """
        root = Path(run_dir)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"run directory {str(root)!r} exists and is not a directory")
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / _LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(
                f"run directory {str(root)!r} is in use by another 'journey synth'"
            ) from None
        try:
            return await self._run_locked(root, problems, dataset or {}, dataset_issues)
        finally:
            lock.release()

    # -- preparing -------------------------------------------------------------------------

    def _open(self, root: Path, dataset: Mapping[str, Any]) -> RunDirectory:
        """Open the run directory, checking and recording the options in `run.json`."""
        meta_path = root / "run.json"
        record = {**self.options.record(), "dataset": dict(dataset)}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if not meta_path.exists():
            return RunDirectory(root, meta={"command": "synth", **record})
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read {meta_path}: {error}") from None
        differences = self._differences(meta)
        if differences and not self.force:
            raise ConfigError(
                f"{root} was made with {'; '.join(differences)}: "
                "use the same options, another --out, or --force"
            )
        meta.setdefault("resumed", []).append(
            {"at": now, **({"forced": differences} if differences else {}), **record}
        )
        write_atomic(meta_path, json.dumps(meta, indent=2))
        return RunDirectory(root)

    def _differences(self, meta: Mapping[str, Any]) -> list[str]:
        if meta.get("command") != "synth":
            return [f"'journey {meta.get('command', '?')}', not 'journey synth'"]
        out = []
        if meta.get("strategy") != self.options.strategy:
            out.append(f"strategy {meta.get('strategy')!r} (now {self.options.strategy!r})")
        recorded = meta.get("models", {})
        for role, spec in self._models.items():
            if recorded.get(role) != spec:
                out.append(f"{role} {recorded.get(role)!r} (now {spec!r})")
        critic_asked = Role.CRITIC in self.options.roles
        if critic_asked and meta.get("critic_mode") != self.options.critic_mode:
            out.append(
                f"critic mode {meta.get('critic_mode')!r} (now {self.options.critic_mode!r})"
            )
        return out

    def _plan(
        self,
        run: RunDirectory,
        problems: Sequence[ProblemRecord],
        report: SynthesisReport,
        tally: _Tally,
        done: list[tuple[ProblemRecord, list[SessionEvent]]],
    ) -> list[_Plan]:
        """Sort problems into done (skipped), ended-but-unindexed, unfinished and fresh.

        A session indexed as `model_error` is not done while errors are retried: its log
        decides, as for an unindexed one, except that a log ending in an error starts
        again (a log cut short is a retry that was interrupted: it is resumed).
        """
        indexed = {s.session_id: s for s in run.summaries()}
        plans: list[_Plan] = []
        for record in problems:
            summary = indexed.get(record.session_id)
            errored = summary is not None and summary.outcome == Outcome.ERROR
            if summary is not None and not (errored and self.retry_errors):
                report.skipped += 1
                tally.count(summary)
                continue
            events = _read_repaired(run, record, report)
            ended = events[-1] if events and isinstance(events[-1], SessionEnded) else None
            if ended is not None and ended.outcome is Outcome.ERROR and self.retry_errors:
                plans.append(_Plan(record, retry=True))
            elif ended is not None:
                done.append((record, events))
            else:  # no log: an indexed error whose log a stopped run had set aside already
                plans.append(_Plan(record, events, retry=errored and not events))
        return plans

    # -- running ---------------------------------------------------------------------------

    async def _run_locked(
        self,
        root: Path,
        problems: Sequence[ProblemRecord],
        dataset: Mapping[str, Any],
        dataset_issues: int,
    ) -> SynthesisReport:
        run = self._open(root, dataset)
        _repair_index(run.index_path)
        run.compact_index()  # lines a killed run left superseded
        try:
            return await self._run_opened(run, problems, dataset_issues)
        finally:
            run.compact_index()

    async def _run_opened(
        self, run: RunDirectory, problems: Sequence[ProblemRecord], dataset_issues: int
    ) -> SynthesisReport:
        report = SynthesisReport(
            run_dir=str(run.root),
            strategy=self.options.strategy,
            sessions=len(problems),
            dataset_issues=dataset_issues,
        )
        tally = _Tally()
        ended_logs: list[tuple[ProblemRecord, list[SessionEvent]]] = []
        plans = self._plan(run, problems, report, tally, ended_logs)
        pool = ClientPool() if self._given_clients is None else None
        failures = LastFailure()
        stopped: str | None = None
        try:
            shared = self._clients(pool)
            # The agents talk through the role wrappers (limits, failures noted); loading
            # and retry counts need the clients themselves (two wrappers over one model
            # would load it twice).
            limits = self.options.request_limits
            clients = {
                role: RoleClient(role, client, limits.get(role), failures)
                for role, client in shared.items()
            }
            o = self.options
            policy = PolicyAgent(
                clients["policy"], max_tokens=parse_model_spec(o.policy).reply_tokens(o.step_tokens)
            )
            critic = (
                CriticAgent(
                    clients["critic"],
                    mode=o.critic_mode,
                    max_tokens=parse_model_spec(o.critic).reply_tokens(o.critic_tokens),
                    max_reasks=o.critic_reasks,
                )
                if "critic" in clients
                else None
            )
            for record, events in ended_logs:
                if not self._reindex(run, record, events, policy, critic, report, tally):
                    plans.append(_Plan(record))
            if plans:
                await self._load(shared)
            retries_before = _retries(shared.values())
            started = time.monotonic()
            stopped = await self._run_sessions(
                run, plans, policy, critic, report, tally, started, failures
            )
            report.wall_time = round(time.monotonic() - started, 3)
            retries_after = _retries(shared.values())
            report.retries_by_cause = {
                cause: count - retries_before.get(cause, 0)
                for cause, count in sorted(retries_after.items())
                if count > retries_before.get(cause, 0)
            }
            report.retries = sum(report.retries_by_cause.values())
        finally:
            if pool is not None:
                await pool.close()
        report.solved = tally.outcomes[Outcome.SOLVED]
        report.unverified = tally.outcomes[Outcome.UNVERIFIED]
        report.failed = tally.outcomes[Outcome.FAILED]
        report.errors = tally.outcomes[Outcome.ERROR]
        report.ran, report.crashed = tally.ran, tally.crashed
        report.generated_tokens, report.prompt_tokens = tally.generated, tally.prompt
        if stopped is not None:
            raise EndpointDownError(stopped, report)
        return report

    def _clients(self, pool: ClientPool | None) -> dict[str, ChatCompletionClient]:
        """The client of each role the strategy asks, from the pool or as given."""
        roles = [role.value for role in self.options.roles]
        if pool is not None:
            specs = {"policy": self.options.policy, "critic": self.options.critic}
            return {role: pool.get(specs[role]) for role in roles}
        given = self._given_clients or {}
        missing = [role for role in roles if role not in given]
        if missing:
            raise ConfigError(f"no client given for {', '.join(missing)}")
        return {role: given[role] for role in roles}

    def _reindex(
        self,
        run: RunDirectory,
        record: ProblemRecord,
        events: list[SessionEvent],
        policy: PolicyAgent,
        critic: CriticAgent | None,
        report: SynthesisReport,
        tally: _Tally,
    ) -> bool:
        """Save and index a session whose log ended before it was indexed.

        Returns False when the log cannot be rebuilt: it is set aside, to be run again
        rather than index something wrong.
        """
        try:
            session = self._session_type.restore(events, policy=policy, critic=critic)
        except RestoreError as error:
            _restart(run, record, report, f"cannot rebuild its log ({error})")
            return False
        tally.count(run.save(DebateResult(session.session_id, session.tree, session.events)))
        report.reindexed += 1
        return True

    async def _load(self, clients: Mapping[str, ChatCompletionClient]) -> None:
        distinct = {id(c): c for c in clients.values()}.values()
        loaders = [c.load for c in distinct if isinstance(c, LoadableClient)]
        if not loaders:
            return
        with self.progress.loading():
            for load in loaders:
                await load()

    async def _run_sessions(
        self,
        run: RunDirectory,
        plans: list[_Plan],
        policy: PolicyAgent,
        critic: CriticAgent | None,
        report: SynthesisReport,
        tally: _Tally,
        started: float,
        failures: LastFailure,
    ) -> str | None:
        """Run the planned sessions; returns None, or the line saying why the run stopped."""

        def fields() -> dict[str, str]:
            elapsed = max(time.monotonic() - started, 1e-9)
            return {"yield_text": tally.yield_text, "speed": f"{tally.generated / elapsed:.1f}"}

        def refresh() -> None:
            self.progress.update(fields())

        async def one(plan: _Plan) -> str | None:
            try:
                ended = await self._session(run, plan, policy, critic, report, tally, refresh)
            except Exception as error:  # one session's bug must not stop the others
                tally.crashed += 1
                line = f"{plan.record.session_id}: {type(error).__name__}: {error}"
                report.problems.append(line)
                logger.exception("session %s crashed", plan.record.session_id)
                return None
            return (ended.error or "no message") if ended.outcome is Outcome.ERROR else None

        already = report.sessions - len(plans)
        with self.progress.running(report.sessions, already, fields()):
            stop = await run_each(
                plans,
                one,
                concurrency=self.options.concurrency,
                streak=ErrorStreak(self._streak_limit),
                progress=self.progress,
                fields=fields,
            )
        return None if stop is None else self._stop_line(stop, failures, run)

    def _stop_line(self, stop: StreakStop, failures: LastFailure, run: RunDirectory) -> str:
        """One line: the endpoint (role and model spec) that kept failing, its last error."""
        if failures.role is not None and failures.error == stop.error:
            endpoint = f"the {failures.role} endpoint {self._models[failures.role]}"
        elif len(set(self._models.values())) == 1:
            endpoint = f"the endpoint {next(iter(self._models.values()))}"
        else:
            endpoint = "the endpoints " + ", ".join(
                f"{role} {spec}" for role, spec in self._models.items()
            )
        return (
            f"stopped after {stop.count} sessions in a row ended in model_error: {endpoint} "
            f"failed with {stop.error}; fix it and run the same command "
            f"again to resume {run.root}"
        )

    async def _session(
        self,
        run: RunDirectory,
        plan: _Plan,
        policy: PolicyAgent,
        critic: CriticAgent | None,
        report: SynthesisReport,
        tally: _Tally,
        refresh: Callable[[], None],
    ) -> SessionEnded:
        """Run (or continue) one session and save it; returns how it ended."""
        record = plan.record
        if plan.retry:
            _keep_error_log(run, record.session_id)
            report.retried += 1
        session: Session | None = None
        posed = plan.events[0] if plan.events else None
        if isinstance(posed, ProblemPosed) and (
            posed.problem != record.problem or posed.gold_answer != record.answer
        ):
            _restart(run, record, report, "its log is about another problem or answer")
        elif plan.events:
            try:
                session = self._session_type.restore(
                    plan.events,
                    policy=policy,
                    critic=critic,
                    limits=self.options.limits,
                    models=self._models,
                )
                report.resumed += 1
            except RestoreError as error:
                _restart(run, record, report, f"cannot continue its log ({error})")
        if session is None:
            session = self._session_type(
                record.problem,
                gold_answer=record.answer,
                policy=policy,
                critic=critic,
                limits=self.options.limits,
                session_id=record.session_id,
                models=self._models,
                config={
                    **self.options.strategy_config,
                    "index": record.index,
                    "meta": record.meta,
                },
            )
        with run.event_log(record.session_id) as log:

            def on_event(event: SessionEvent) -> None:
                if isinstance(event, SessionEnded) and event.stop_reason is StopReason.CANCELLED:
                    return  # interrupted, not ended: the log stays open for a resume
                log.write(event)
                if isinstance(event, PolicyStepProposed | CriticVerdictGiven):
                    tally.generated += event.usage.completion_tokens
                    tally.prompt += event.usage.prompt_tokens
                    refresh()

            result = await session.run(on_event)
        tally.count(run.save(result))
        tally.ran += 1
        return result.ended


def _retries(clients: Iterable[ChatCompletionClient]) -> dict[str, int]:
    """Retries so far per cause, summed over the distinct clients that count them."""
    total: dict[str, int] = {}
    for client in {id(c): c for c in clients}.values():
        for cause, count in retry_causes(client).items():
            total[cause] = total.get(cause, 0) + count
    return total


def _restart(run: RunDirectory, record: ProblemRecord, report: SynthesisReport, why: str) -> None:
    """Set a session's log aside (as `events.broken.jsonl`) so it starts again."""
    line = f"{record.session_id}: {why}; started again"
    report.problems.append(line)
    report.restarted += 1
    logger.warning(line)
    _set_aside(run.session_dir(record.session_id) / "events.jsonl")


def _read_repaired(
    run: RunDirectory, record: ProblemRecord, report: SynthesisReport
) -> list[SessionEvent]:
    """A session's logged events, with the file made safe to append to.

    A last line cut mid-write is removed (a complete last line missing its newline gets
    one); a log damaged elsewhere is set aside, and the session starts again.
    """
    path = run.session_dir(record.session_id) / "events.jsonl"
    if not path.exists():
        return []
    log = read_event_log(path)
    if log.bad_lines:
        _restart(run, record, report, f"unreadable lines {log.bad_lines} in its log")
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            if log.truncated:
                file.truncate(data.rfind(b"\n") + 1)
            else:
                file.seek(0, os.SEEK_END)
                file.write(b"\n")
    return log.events


def _repair_index(path: Path) -> None:
    """Cut a half-written last line off `sessions.jsonl`, so the next line starts clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)


def _set_aside(path: Path) -> None:
    if path.exists():
        os.replace(path, path.with_name("events.broken.jsonl"))


def _keep_error_log(run: RunDirectory, session_id: str) -> None:
    """Set a `model_error` session's log aside as `events.error-N.jsonl` (N = 1, 2...,
    one per failed try) so that it runs again from the start. Its index line stays until
    the new one supersedes it."""
    folder = run.session_dir(session_id)
    log = folder / "events.jsonl"
    if log.exists():
        number = 1
        while (folder / f"events.error-{number}.jsonl").exists():
            number += 1
        os.replace(log, folder / f"events.error-{number}.jsonl")
    (folder / "shortcut.md").unlink(missing_ok=True)
