"""Synthesis on a local Ray cluster: units on worker actors, a killed worker (what it
spent recorded once), the merge, one budget for the whole cluster."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from test_runner import _asked, dataset, fake_policy, logs, options, synthesise

from journey.protocols import TokenUsage
from journey.runs import RunDirectory, SynthesisReport
from journey.runs.ray_synthesis import RayOptions, run_on_ray, unit_dirs
from journey.runs.spend import recorded_spend

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

TESTS = Path(__file__).parent
KILL_MARKER = "JOURNEY_TEST_KILL_MARKER"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local cluster for the module (it takes seconds to start); workers import the
    tests' fake models, and find the kill marker in the environment."""
    marker = tmp_path_factory.mktemp("marker") / "killed-once"
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), *sys.path])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, KILL_MARKER: str(marker)}},
    )
    yield marker
    ray.shutdown()


def killing_policy(messages: Sequence[LLMMessage]) -> str:
    """The fake policy, but its worker process dies the first time problem 3 reaches step 2."""
    k, _, step, _ = _asked(messages)
    marker = Path(os.environ[KILL_MARKER])
    if k == 3 and step == 2 and not marker.exists():
        marker.write_text("killed")
        # The worker dies mid-session, as a preempted node would: a moment after its last
        # answer (whose report to the job's ledger has left it), not in the same instant.
        time.sleep(0.5)
        os._exit(1)
    return fake_policy(messages)


def paid_for_sessions(run: Path) -> dict[str, TokenUsage]:
    """Each role's tokens over the run's sessions: what a cold cache pays for them when
    every answer is logged once (a resumed session asks nothing it logged)."""
    summed: dict[str, TokenUsage] = {}
    for summary in RunDirectory(run).summaries():
        for role, used in summary.usage.items():
            summed[role.value] = summed.get(role.value, TokenUsage()) + used
    return summed


def reported(report: SynthesisReport) -> dict[str, TokenUsage]:
    return {
        role: TokenUsage(prompt_tokens=s["prompt_tokens"], completion_tokens=s["completion_tokens"])
        for role, s in report.spend.items()
    }


def test_units_on_workers_merge_into_the_run_a_single_process_writes(
    cluster: Path, tmp_path: Path
) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect", "backtrack", "wrongfinal"] * 2)
    report = run_on_ray(
        options(),
        problems,
        tmp_path / "ray",
        RayOptions(workers=2, units=4),
        dataset={"path": "d.jsonl"},
    )
    assert report.solved == 8 and report.ran == 8 and not report.problems
    assert sorted(p.name for p in unit_dirs(tmp_path / "ray", 4)) == sorted(
        p.name for p in (tmp_path / "ray" / "units").iterdir()
    )
    synthesise(tmp_path / "single", problems)
    assert logs(tmp_path / "ray") == logs(tmp_path / "single")
    # Again: every unit resumes as done, the merge adds nothing.
    again = run_on_ray(options(), problems, tmp_path / "ray", RayOptions(workers=2, units=4))
    assert again.skipped == 8 and again.ran == 0


def test_a_killed_worker_is_replaced_and_its_unit_resumes(cluster: Path, tmp_path: Path) -> None:
    kinds = ["plain", "reflect", "plain", "backtrack"]
    problems = dataset(tmp_path / "d.jsonl", kinds)
    settings = options(policy="function:test_ray_synthesis:killing_policy")
    out = tmp_path / "ray"
    report = run_on_ray(settings, problems, out, RayOptions(workers=2, units=2))
    assert cluster.exists(), "the worker was killed once"
    assert report.solved == 4 and not report.problems
    assert report.resumed == 1  # problem 3's session went on from its log
    ids = [json.loads(line)["session_id"] for line in (out / "sessions.jsonl").open()]
    assert sorted(ids) == sorted(p.session_id for p in problems)  # nothing twice
    summaries = {s.session_id: s for s in RunDirectory(out).summaries()}
    assert all(s.outcome == "solved" for s in summaries.values())
    # What the killed worker spent before it died (its unit's sessions, problem 3's first
    # turn) is in spend.json, and the report, already: each logged answer paid once.
    assert recorded_spend(out) == paid_for_sessions(out) == reported(report)
    # Again, with two problems more: the units resume (merged again), and spend.json
    # grows by what the new sessions cost, nothing twice.
    more = dataset(tmp_path / "more.jsonl", [*kinds, "plain", "reflect"])
    again = run_on_ray(settings, more, out, RayOptions(workers=2, units=2))
    assert (again.skipped, again.ran, again.solved) == (4, 2, 6)
    assert recorded_spend(out) == paid_for_sessions(out)


def test_the_cli_holds_the_cluster_to_one_budget_and_a_rerun_finishes_the_rest(
    cluster: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from journey.cli import app

    dataset(tmp_path / "d.jsonl", ["plain", "reflect", "plain"])
    run = tmp_path / "run"
    args = [
        "synth",
        "--dataset",
        str(tmp_path / "d.jsonl"),
        "--out",
        str(run),
        "--policy",
        "function:test_runner:fake_policy",
        "--critic",
        "function:test_runner:fake_critic",
        "--critic-mode",
        "generate",
        "--ray",
        "auto",  # the cluster the fixture started; joined, not started again
        "--ray-workers",
        "2",
        "--no-progress",
        "--json",
    ]
    cut = CliRunner().invoke(app, [*args, "--budget-tokens", "1"])
    assert cut.exit_code == 0, cut.output
    report = json.loads(cut.stdout)
    # The first answer on any worker spends the job's budget: every session started stops
    # at its turn boundary, and none starts after (each needs more than one turn).
    left = 3 - report["finished"]
    used = sum(u.total for u in recorded_spend(run).values())  # every unit's, merged
    assert left > 0 and used == sum(
        role["prompt_tokens"] + role["completion_tokens"] for role in report["spend"].values()
    )
    assert report["stopped"] == (
        f"budget: 1 tokens spent ({used:,} used); {left} session{'' if left == 1 else 's'} "
        f"left: run the same command again to resume {run}"
    )
    done = CliRunner().invoke(app, args)  # no budget now: the rest is finished
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["solved"] == 3 and json.loads(done.stdout)["stopped"] is None
    ids = [json.loads(line)["session_id"] for line in (run / "sessions.jsonl").open()]
    assert len(set(ids)) == len(ids) == 3  # nothing twice
    assert len(RunDirectory(run).summaries()) == 3
