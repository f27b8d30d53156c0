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
names the role's model spec and its last error. Each role's requests go through the
run's `RequestAccounts` (`journey.runs.request_accounts`, as `journey eval`'s and `journey
pairs`' do): the response cache, then the meter that prices them and holds them to
`options.spending`'s budget. A spent budget stops the run too: no session starts, those
in flight stop at a turn boundary, and the report says why (`SynthesisReport.stopped`);
it resumes as well.

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

`run.json` is the run's manifest (`journey.runs.manifest`): it records the options;
resuming with other models, critic mode or strategy is refused unless forced;
concurrency limits may change, as they never change what a session says. A lock file
keeps two processes off one run.

This module is the driver; the options are in `synthesis_options`, the work on one
session in `_synthesis_session`, the resume bookkeeping in `_synthesis_resume`, the
report in `synthesis_report`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Unpack

from autogen_core.models import ChatCompletionClient
from filelock import FileLock, Timeout

from journey.agents.backends import ClientPool, LoadableClient, retry_causes
from journey.agents.backends.role_endpoints import role_client
from journey.agents.backends.routed import RoutedClient
from journey.errors import ConfigError
from journey.problems.dataset import ProblemRecord
from journey.protocols import Outcome, SessionEvent
from journey.runs._synthesis_resume import SessionPlan, plan_sessions, repair_index
from journey.runs._synthesis_session import SessionWork
from journey.runs.endpoint_health import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    EndpointDownError,
    ErrorStreak,
    LastFailure,
    RoleClient,
)
from journey.runs.jobs import ControlKeywords, JobControls, LeftForLater, StreakStop, run_job
from journey.runs.request_accounts import RequestAccounts
from journey.runs.run_agents import policy_agent, step_judge
from journey.runs.rundir import RUN_LOCK, RunDirectory
from journey.runs.spend import cost_text
from journey.runs.synthesis_options import SynthesisOptions, describe_change
from journey.runs.synthesis_report import SynthesisReport, SynthesisTally
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


class SynthesisRunner:
    """Runs one session per problem into a run directory, concurrently and resumably.

    Args:
        options: Strategy, models, limits and concurrency.
        clients: A client per role (`policy`, `critic`) to use instead of building them
            from the specs in `options` (tests, callers that hold clients already); the
            specs are still what `run.json` and the logs record, and the role request
            limits in `options` wrap these clients too. Only the roles the strategy asks
            are used.
        retry_errors: Run again the sessions that ended as `model_error`; False keeps
            them as they are.
        **controls: `progress` (told of each session as it runs and ends), `force`
            (resume a run directory whose recorded models or strategy differ) and
            `max_consecutive_errors` (sessions in a row ended as `model_error`), as
            `ControlKeywords`.

    Raises:
        ConfigError: `max_consecutive_errors` is negative, or a USD budget is given where a
            role has no price.
    """

    def __init__(
        self,
        options: SynthesisOptions,
        *,
        clients: Mapping[str, ChatCompletionClient] | None = None,
        retry_errors: bool = True,
        **controls: Unpack[ControlKeywords],
    ) -> None:
        self.options = options
        self._controls = JobControls.of(**controls)
        self._given_clients = dict(clients) if clients is not None else None
        self.retry_errors = retry_errors
        self._models = options.models
        self._client_models = options.client_models
        self._session_type = strategy_session(options.strategy)
        options.spending.meter(self._client_models)  # a USD budget needs every role's price

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
        lock = FileLock(str(root / RUN_LOCK), timeout=0)
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

    def _open(self, root: Path, dataset: Mapping[str, Any]) -> RunDirectory:
        """Open the run directory, checking and recording the options in `run.json`."""
        self.options.manifest(dataset).open(
            root / "run.json",
            subject=f"{root} was",
            force=self._controls.force,
            describe=describe_change,
        )
        return RunDirectory(root)

    # -- running ---------------------------------------------------------------------------

    async def _run_locked(
        self,
        root: Path,
        problems: Sequence[ProblemRecord],
        dataset: Mapping[str, Any],
        dataset_issues: int,
    ) -> SynthesisReport:
        run = self._open(root, dataset)
        repair_index(run.index_path)
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
        tally = SynthesisTally()
        ended_logs: list[tuple[ProblemRecord, list[SessionEvent]]] = []
        plans = plan_sessions(
            run, problems, report, tally, ended_logs, retry_errors=self.retry_errors
        )
        accounts = RequestAccounts(self.options.spending, self._client_models, run.root)
        pool = ClientPool() if self._given_clients is None else None
        failures = LastFailure()
        stopped: str | None = None
        shared: dict[str, ChatCompletionClient] = {}
        try:
            shared = self._clients(pool)
            # The agents talk through the role wrappers (the accounts: the cache, and
            # under it the meter of what reaches a model; limits; failures noted);
            # loading and retry counts need the clients themselves (two wrappers over one
            # model would load it twice).
            limits = self.options.request_limits
            clients = {
                role: RoleClient(role, accounts.wrap(role, client), limits.get(role), failures)
                for role, client in shared.items()
            }
            o = self.options
            policy = policy_agent(o, clients["policy"])
            critic = step_judge(o, clients["critic"]) if "critic" in clients else None
            work = SessionWork(
                run,
                o,
                self._session_type,
                self._models,
                policy,
                critic,
                report,
                tally,
                halted=accounts.halted,
            )
            for record, events in ended_logs:
                if not work.reindex(record, events):
                    plans.append(SessionPlan(record))
            if plans:
                await self._load(shared)
            retries_before = _retries(shared.values())
            started = time.monotonic()
            stopped = await self._run_sessions(work, plans, started, failures, accounts)
            report.wall_time = round(time.monotonic() - started, 3)
            retries_after = _retries(shared.values())
            report.retries_by_cause = {
                cause: count - retries_before.get(cause, 0)
                for cause, count in sorted(retries_after.items())
                if count > retries_before.get(cause, 0)
            }
            report.retries = sum(report.retries_by_cause.values())
        finally:
            report.endpoints = {
                role: [asdict(stats) for stats in client.stats()]
                for role, client in shared.items()
                if isinstance(client, RoutedClient)
            }
            try:
                accounts.close()
            finally:
                if pool is not None:
                    await pool.close()
        report.solved = tally.outcomes[Outcome.SOLVED]
        report.unverified = tally.outcomes[Outcome.UNVERIFIED]
        report.failed = tally.outcomes[Outcome.FAILED]
        report.errors = tally.outcomes[Outcome.ERROR]
        report.ran, report.crashed = tally.ran, tally.crashed
        report.generated_tokens, report.prompt_tokens = tally.generated, tally.prompt
        spent = accounts.report(left=report.sessions - report.finished, noun="session")
        report.cache, report.spend, report.cost_usd = spent.cache, spent.spend, spent.cost_usd
        report.stopped = spent.stopped
        if stopped is not None:
            raise EndpointDownError(stopped, report)
        return report

    def _clients(self, pool: ClientPool | None) -> dict[str, ChatCompletionClient]:
        """The client of each role the strategy asks, from the pool or as given."""
        roles = [role.value for role in self.options.roles]
        if pool is not None:
            specs = self.options.client_models
            return {role: role_client(specs[role], pool) for role in roles}
        given = self._given_clients or {}
        missing = [role for role in roles if role not in given]
        if missing:
            raise ConfigError(f"no client given for {', '.join(missing)}")
        return {role: given[role] for role in roles}

    async def _load(self, clients: Mapping[str, ChatCompletionClient]) -> None:
        distinct = {id(c): c for c in clients.values()}.values()
        loaders = [c.load for c in distinct if isinstance(c, LoadableClient)]
        if not loaders:
            return
        with self._controls.progress.loading():
            for load in loaders:
                await load()

    async def _run_sessions(
        self,
        work: SessionWork,
        plans: list[SessionPlan],
        started: float,
        failures: LastFailure,
        accounts: RequestAccounts,
    ) -> str | None:
        """Run the planned sessions; returns None, or the line saying why the run stopped
        (an endpoint down; a spent budget stops sessions without a line here)."""
        run, report, tally = work.run, work.report, work.tally
        progress = self._controls.progress

        def fields() -> dict[str, str]:
            elapsed = max(time.monotonic() - started, 1e-9)
            return {
                "yield_text": tally.yield_text,
                "speed": f"{tally.generated / elapsed:.1f}",
                "cost": f"cost {cost_text(accounts.meter.cost)}",
            }

        def refresh() -> None:
            progress.update(fields())

        async def one(plan: SessionPlan) -> str | None:
            try:
                ended = await work.run_session(plan, refresh)
            except LeftForLater:
                raise  # the budget cut it: neither done nor a failure
            except Exception as error:  # one session's bug must not stop the others
                tally.crashed += 1
                line = f"{plan.record.session_id}: {type(error).__name__}: {error}"
                report.problems.append(line)
                logger.exception("session %s crashed", plan.record.session_id)
                return None
            return (ended.error or "no message") if ended.outcome is Outcome.ERROR else None

        stop = await run_job(
            plans,
            one,
            concurrency=self.options.concurrency,
            controls=self._controls,
            already=report.sessions - len(plans),
            fields=fields,
            halted=work.halted,
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


def _retries(clients: Iterable[ChatCompletionClient]) -> dict[str, int]:
    """Retries so far per cause, summed over the distinct clients that count them."""
    total: dict[str, int] = {}
    for client in {id(c): c for c in clients}.values():
        for cause, count in retry_causes(client).items():
            total[cause] = total.get(cause, 0) + count
    return total
