"""One ledger for a job spread over processes, without a cluster: meters in "workers"
share a `SpendLedger` through `LedgerLink`s (a fake actor handle answers at once); the
ledger only sums, each meter judges the job's sum with the one `SpendMeter.spent`, and
what a meter whose process died never saved is added to its spend file, once."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from journey.errors import ConfigError
from journey.evaluation.ray_jobs import stopped_text
from journey.protocols import TokenUsage
from journey.runs.ray_budget import LedgerLink, SpendLedger, save_unsaved
from journey.runs.ray_units import Unit, UnitOutcomes
from journey.runs.request_accounts import RequestAccounts, SpendSettings, stopped_line
from journey.runs.spend import RunBudget, SpendMeter, recorded_spend

MODEL = "function:x:y"
PRICED = "function:x:y?price_in=1&price_out=2"


class _Method:
    def __init__(self, handle: FakeLedger, name: str) -> None:
        self._handle, self._name = handle, name

    def remote(self, *args: Any) -> Any:
        self._handle.asked += self._name == "report"
        return getattr(self._handle.ledger, self._name)(*args)  # the answer, not a reference


class FakeLedger:
    """The ledger actor's handle as a link uses it: `record.remote(...)` and
    `report.remote(...)` answered at once; `asked` counts the reports (those answered)."""

    def __init__(self) -> None:
        self.ledger = SpendLedger()
        self.asked = 0

    @property
    def record(self) -> _Method:
        return _Method(self, "record")

    @property
    def report(self) -> _Method:
        return _Method(self, "report")


def answered(reference: Any) -> Any:
    return reference  # the fake's calls give their answers, not references


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def used(prompt: int, completion: int) -> TokenUsage:
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)


def meter(link: LedgerLink, **budget: Any) -> SpendMeter:
    return SpendSettings(budget=RunBudget(**budget), shared=link).meter({"model": MODEL})


def test_every_meter_judges_the_budget_on_what_the_whole_job_spent() -> None:
    fake, clock = FakeLedger(), Clock()
    link = LedgerLink(fake, every_s=1.0, get=answered, clock=clock)
    first, second = meter(link, tokens=100), meter(link, tokens=100)
    assert first.spent() is None and second.spent() is None  # each asks once at its start
    first.add("model", 50, 10)  # the ledger hears of every answer at once, unasked
    assert fake.ledger.total() == {"model": (50, 10)} and fake.asked == 2
    # Each meter asks what the others spent at most once every every_s: `second` still
    # knows `first` at 0 tokens.
    assert first.spent() is None and second.spent() is None and fake.asked == 2
    clock.now = 1.0
    second.add("model", 30, 0)
    assert second.spent() is None and fake.asked == 3  # due: told of `first`'s 60
    first.add("model", 5, 5)  # 70 in all, 100 with `second`'s 30
    assert fake.ledger.total() == {"model": (85, 15)}
    assert first.spent() == "budget: 100 tokens spent (100 used)"
    # `second` heard of `first` at 0 tokens a moment ago: until every_s has passed it goes
    # on (the overshoot a report's interval allows), then stops too.
    assert second.spent() is None
    clock.now = 2.0
    assert second.spent() == "budget: 100 tokens spent (100 used)"
    # Only this meter's own tokens are its own: the report and the file count those.
    assert first.tokens == 70 and second.tokens == 30
    assert first.report()["model"]["prompt_tokens"] == 55


def test_a_usd_budget_prices_the_job_sum_and_needs_every_price() -> None:
    link = LedgerLink(FakeLedger(), every_s=0.0, get=answered)
    settings = SpendSettings(budget=RunBudget(usd=0.003), shared=link)
    first, second = (settings.meter({"model": PRICED}) for _ in range(2))
    first.add("model", 1000, 0)  # $0.001
    second.add("model", 0, 500)  # $0.001
    assert second.spent() is None
    first.add("model", 0, 500)
    assert second.spent() == "budget: $0.0030 spent ($0.0030 used)"
    with pytest.raises(ConfigError, match="--budget-usd needs every role's price"):
        SpendSettings(budget=RunBudget(usd=1.0), shared=link).meter({"model": MODEL})


def test_the_ledger_keeps_each_meters_latest_total_and_only_sums() -> None:
    ledger = SpendLedger()
    assert ledger.report("a", {"model": (10, 1)}) == {}
    assert ledger.report("b", {"model": (5, 5), "critic": (1, 0)}) == {"model": (10, 1)}
    assert ledger.report("a", {"model": (20, 2)}) == {"model": (5, 5), "critic": (1, 0)}
    assert ledger.total() == {"model": (25, 7), "critic": (1, 0)}  # a's latest, not a's sum


def test_a_link_goes_to_a_worker_without_what_this_process_heard() -> None:
    fake = FakeLedger()
    link = LedgerLink(fake, every_s=5.0, get=answered)
    spender = meter(link, tokens=10)
    spender.add("model", 3, 0)
    assert spender.spent() is None  # its first question to the ledger
    sent: LedgerLink = pickle.loads(pickle.dumps(link))
    assert link._others and sent._others == {} and sent._asked == {}
    assert sent._every_s == 5.0 and sent._ledger.ledger.total() == {"model": (3, 0)}


def test_the_ledger_keeps_what_accounts_spent_until_they_save_it(tmp_path: Path) -> None:
    fake = FakeLedger()
    link = LedgerLink(fake, every_s=60.0, get=answered)
    settings = SpendSettings(budget=RunBudget(tokens=1000), shared=link)
    accounts = RequestAccounts(settings, {"model": MODEL}, tmp_path, prefix="pairs.")
    assert not accounts.halted()
    accounts.meter.add("model", 7, 3)  # heard at once, and not in the spend file yet
    file = str(tmp_path / "pairs.spend.json")
    assert fake.ledger.total() == {"model": (7, 3)}
    assert fake.ledger.unsaved() == {file: {"model": (7, 3)}}
    accounts.close()
    assert fake.ledger.unsaved() == {} and fake.ledger.total() == {"model": (7, 3)}
    assert recorded_spend(tmp_path, prefix="pairs.") == {"model": used(7, 3)}


def test_what_a_dead_workers_meter_counted_reaches_its_file_once(tmp_path: Path) -> None:
    fake = FakeLedger()
    settings = SpendSettings(shared=LedgerLink(fake, get=answered))  # no budget: a ledger still
    dead, done, idle = tmp_path / "dead", tmp_path / "done", tmp_path / "idle"
    killed = RequestAccounts(settings, {"model": MODEL}, dead)
    killed.meter.add("model", 20, 5)  # then its process dies: it never closes
    RequestAccounts(settings, {"model": MODEL}, idle).meter.flush()  # died, having spent 0
    finished = RequestAccounts(settings, {"model": MODEL}, done)
    finished.meter.add("model", 1, 1)
    finished.close()
    # The unit resumed on another worker: a meter of its own, which saves its own spend.
    resumed = RequestAccounts(settings, {"model": MODEL}, dead)
    resumed.meter.add("model", 2, 2)
    resumed.close()
    assert fake.ledger.total() == {"model": (23, 8)}
    added = save_unsaved(fake.ledger.unsaved())  # the job's end
    assert added == {dead / "spend.json": {"model": used(20, 5)}}
    assert recorded_spend(dead) == {"model": used(22, 7)}  # each meter's once
    assert recorded_spend(done) == {"model": used(1, 1)} and not recorded_spend(idle)
    # The next run has a ledger of its own: nothing from this one is added again.
    assert save_unsaved(SpendLedger().unsaved()) == {}
    assert recorded_spend(dead) == {"model": used(22, 7)}


def test_a_job_on_ray_stops_in_the_line_one_process_gives(tmp_path: Path) -> None:
    spent = "budget: 10 tokens spent (12 used)"
    line = stopped_line(spent, 3, "problem", tmp_path)
    assert line == f"{spent}; 3 problems left: run the same command again to resume {tmp_path}"
    assert stopped_line(spent, 0, "problem", tmp_path) is None  # all done: nothing stopped
    assert stopped_line(None, 3, "problem", tmp_path) is None
    lost = UnitOutcomes(left=["units/u1: its worker died 4 times"], held=[Unit(tmp_path, ())])
    assert stopped_text(spent, 1, tmp_path, lost) == (
        f"{spent}; 1 problem left: run the same command again to resume {tmp_path}; "
        "units left unfinished: units/u1: its worker died 4 times"
    )
    assert stopped_text(None, 0, tmp_path, UnitOutcomes()) is None
