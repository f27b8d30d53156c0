"""What a run's sessions cost: per role, per action, per verified long thought, and paid.

Every cost is tokens at the role's price (`journey.runs.prices`: the spec's options,
the prices given to `journey stats`, those the run was given (`run.json`), journey's
dated table), over the run's *finished* sessions, as the token counts of `journey
stats` are:

- per role: each role's tokens;
- per action: the same tokens split by the action applied to the node each turn was
  about (a policy step, and the critic's verdict on it, go to that node's `continue`,
  `reflect`, `backtrack` or `terminate`, or to `verifier` where the verifier decided on
  a final answer); tokens on no decided node (a reply the strategy dropped, a step a
  limit cut before its verdict) are `other`, so the actions add up to the roles;
- per solved session: all roles' cost over the solved sessions, failed ones included:
  what one verified long thought costs;
- paid: the tokens that reached each role's model over all the run's invocations
  (`spend.json`); replies the response cache gave were free, so a warm-cache rerun pays
  nothing for sessions that cost something.

A role with no price has no cost (None, shown as "—"), never 0, and `missing` says why;
a role that used no tokens costs 0 with or without one.

`spend_rows` words what one invocation of a job spent (`SpendReport`) for a summary;
`invocation_cost` is its cost line, which `journey synth`'s summary shows too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from journey.errors import ConfigError
from journey.protocols import (
    ActionApplied,
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    Role,
    SessionEvent,
    TokenUsage,
)
from journey.runs.manifest import ManifestFile, read_manifest
from journey.runs.prices import ModelPrice, PriceTable, RolePrice, parse_prices, total_cost
from journey.runs.request_accounts import SpendReport
from journey.runs.rundir import SessionSummary, read_event_log
from journey.runs.spend import cost_text, recorded_spend

__all__ = ["ACTION_BUCKETS", "RunCost", "invocation_cost", "run_cost", "spend_rows"]

logger = logging.getLogger(__name__)

ACTION_BUCKETS = ("continue", "reflect", "backtrack", "terminate", "verifier", "other")
"""What a turn's tokens are put under, in the order reports list them."""

_Usage = dict[str, TokenUsage]


class RunCost(BaseModel):
    """A run's costs in USD; None wherever a price is missing."""

    prices: dict[str, dict[str, float | str] | None] = Field(
        description="Per role, the price used (in, out: USD per million tokens; its source)."
    )
    missing: list[str] = Field(description="One line per role that has no price.")
    roles: dict[str, float | None] = Field(description="Per role, the finished sessions' cost.")
    actions: dict[str, float | None] = Field(
        description="The same cost split by the action applied to each turn's node."
    )
    total: float | None = Field(description="Every role's cost over the finished sessions.")
    per_solved: float | None = Field(
        description="The total over the solved sessions: what a verified long thought costs."
    )
    paid: dict[str, float | None] = Field(
        default_factory=dict,
        description="Per role, what reached its model over the run's invocations (cache hits "
        "free), at its price; empty when the run recorded no spend.",
    )
    paid_total: float | None = None


def _cost(prices: Mapping[str, RolePrice], usage: _Usage) -> float | None:
    """The cost of each role's usage; a role that used nothing costs 0 even without price."""
    costs = []
    for role, used in usage.items():
        price = prices.get(role)
        costs.append(0.0 if used.total == 0 else price.cost(used) if price else None)
    return total_cost(costs)


def _used(usage: _Usage, role: str) -> int:
    return usage.get(role, TokenUsage()).total


def _add(usage: dict[str, _Usage], bucket: str, role: str, used: TokenUsage) -> None:
    into = usage.setdefault(bucket, {})
    into[role] = into.get(role, TokenUsage()) + used


def _by_action(events: list[SessionEvent], usage: dict[str, _Usage]) -> _Usage:
    """Add a session's turns to `usage` by the action applied to their node; returns
    what was attributed, per role."""
    bucket: dict[int, str] = {}
    for event in events:
        if isinstance(event, ActionApplied):
            by_verifier = event.source is Role.VERIFIER
            bucket[event.node_id] = "verifier" if by_verifier else event.action.action
    attributed: _Usage = {}
    for event in events:
        if isinstance(event, PolicyStepProposed | CriticVerdictGiven):
            role = Role.POLICY if isinstance(event, PolicyStepProposed) else Role.CRITIC
            where = bucket.get(event.node_id)
            if where is not None and event.usage.total:
                _add(usage, where, role.value, event.usage)
                attributed[role.value] = attributed.get(role.value, TokenUsage()) + event.usage
    return attributed


def _split_by_action(
    root: Path, finished: list[SessionSummary], totals: _Usage
) -> dict[str, _Usage]:
    """Each role's tokens per action bucket; what no decided node holds is `other`."""
    by_action: dict[str, _Usage] = {bucket: {} for bucket in ACTION_BUCKETS}
    attributed: _Usage = {}
    for summary in finished:
        path = root / "sessions" / summary.session_id / "events.jsonl"
        events = read_event_log(path).events if path.is_file() else []
        for role, used in _by_action(events, by_action).items():
            attributed[role] = attributed.get(role, TokenUsage()) + used
    for role, used in totals.items():
        done = attributed.get(role, TokenUsage())
        rest = TokenUsage(
            prompt_tokens=used.prompt_tokens - done.prompt_tokens,
            completion_tokens=used.completion_tokens - done.completion_tokens,
        )
        _add(by_action, "other", role, rest)
    return by_action


def _manifest(root: Path) -> ManifestFile | None:
    """The run's `run.json`; None when it has none or it cannot be read (no costs then)."""
    try:
        return read_manifest(root / "run.json")
    except ConfigError as error:
        logger.warning("%s: its models are unknown, so are its costs", error)
        return None


def _recorded_prices(root: Path) -> dict[str, ModelPrice]:
    """The prices a run was last given (`run.json`'s latest entry that has some)."""
    manifest = _manifest(root)
    if manifest is None:
        return {}
    entries = [manifest.settings, *(entry.settings for entry in manifest.resumed)]
    for settings in reversed(entries):
        if "prices" in settings:
            try:
                return parse_prices(settings["prices"], "run.json's prices", "the run's prices")
            except ConfigError as error:
                logger.warning("%s: %s", root, error)
    return {}


def _models(root: Path) -> dict[str, str]:
    manifest = _manifest(root)
    models = manifest.current.get("models") if manifest is not None else None
    return dict(models) if isinstance(models, Mapping) else {}


def run_cost(
    root: Path,
    finished: list[SessionSummary],
    *,
    prices: Mapping[str, ModelPrice] | None = None,
) -> RunCost:
    """Price a run's finished sessions (see the module docstring).

    Args:
        root: The run directory (its `run.json` names the models and any prices it was
            given; `spend.json` what it paid).
        finished: Its finished sessions.
        prices: Prices by model name that win over the run's own (`journey stats --prices`).
    """
    table = PriceTable({**_recorded_prices(root), **(prices or {})})
    role_prices = table.for_roles(_models(root))
    totals: _Usage = {}
    for summary in finished:
        for role, used in summary.usage.items():
            totals[role.value] = totals.get(role.value, TokenUsage()) + used
    for name in totals:
        role_prices.setdefault(name, RolePrice(name, "", None, f"no model recorded for {name}"))
    priced = any(p.price is not None for p in role_prices.values())
    # The event logs are read only when a cost can come of them.
    by_action = _split_by_action(root, finished, totals) if priced else {}
    solved = sum(s.outcome == Outcome.SOLVED for s in finished)
    total = _cost(role_prices, totals)
    spend = recorded_spend(root)
    order = [*totals, *(role for role in spend if role not in totals)]
    paid = {role: _cost(role_prices, {role: spend[role]}) for role in order if role in spend}
    return RunCost(
        prices={
            role: None if p.price is None else {**p.price.record(), "source": p.price.source}
            for role, p in role_prices.items()
        },
        missing=[p.missing for p in role_prices.values() if p.missing and _used(totals, p.role)],
        roles={role: _cost(role_prices, {role: used}) for role, used in totals.items()},
        actions={
            bucket: _cost(role_prices, by_action[bucket]) if priced else None
            for bucket in ACTION_BUCKETS
        },
        total=total,
        per_solved=total / solved if total is not None and solved else None,
        paid=paid,
        paid_total=total_cost(paid.values()) if paid else None,
    )


def invocation_cost(
    spend: Mapping[str, Mapping[str, Any]], cost_usd: float | None, *, tokens: bool = True
) -> str:
    """One invocation's cost (`SpendReport.spend` and `cost_usd`) in a line: the total,
    each role's beside it and, with `tokens`, the tokens that reached a model; then why
    any role has no price (`$0.0123 (policy $0.0100 · critic $0.0023; 4,000 tokens)`)."""
    roles = " · ".join(f"{role} {cost_text(s['usd'])}" for role, s in spend.items())
    if tokens:
        used = sum(s["prompt_tokens"] + s["completion_tokens"] for s in spend.values())
        roles += f"; {used:,} tokens"
    missing = "".join(f"; {s['missing']}" for s in spend.values() if s.get("missing"))
    return f"{cost_text(cost_usd)} ({roles}){missing}"


def spend_rows(report: SpendReport) -> list[tuple[str, str]]:
    """A job's spend as a summary's rows: this invocation's cost per role (and the roles
    without a price), all it paid, what the cache did, why it stopped."""
    rows: list[tuple[str, str]] = []
    if report.spend:
        rows.append(("cost", invocation_cost(report.spend, report.cost_usd)))
    if report.paid:
        tokens = sum(p["prompt_tokens"] + p["completion_tokens"] for p in report.paid.values())
        rows.append(("paid, every run", f"{cost_text(report.paid_usd)} ({tokens:,} tokens)"))
    for role, counts in report.cache.items():
        did = f"{counts['hits']} hits · {counts['misses']} misses · {counts['stored']} stored"
        rows.append((f"cache · {role}", did))
    if report.stopped:
        rows.append(("stopped", report.stopped))
    return rows
