"""`journey replay`: listing a run, finding a session, filters, pacing, cut-short logs."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.protocols import ActionName, Role
from journey.runs import RunDirectory
from journey.runs.stats import SessionOverview, read_run, session_overviews
from journey.sessions import DebateSession, SessionLimits, SessionResult
from journey.view.render import SessionRenderer, render_session_list
from journey.view.replay import (
    MAX_GAP,
    OPEN_END,
    EventFilter,
    ReplayOptions,
    pacing_delays,
    parse_turn_range,
    replay_session,
    resolve_session,
    select_events,
    tree_from_events,
)

runner = CliRunner()

OK = "VERDICT: correct\nACTION: continue\nREASON: The step is right."
SOLVED = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?"
STARS = "How many stars are in the two pictures together?"
JOURNEY = "A farmer has 3 pens with 4 sheep in each. How many sheep does the farmer have?"
CRASHED = "What is 2 + 2?"


@dataclass
class FixtureRun:
    """A run of four sessions: solved, failed by max turns, a journey, a crash."""

    root: Path
    solved: SessionResult
    """Two steps, the second verified."""
    max_turns: SessionResult
    """Three accepted steps and the turn limit; its first step says "wait"."""
    journey: SessionResult
    """A backtrack to step 1, a reflect, then a verified answer."""
    crashed_id: str
    """Only an event log, its last line (session_ended) cut mid-write."""

    @property
    def finished(self) -> list[SessionResult]:
        return [self.solved, self.max_turns, self.journey]


async def _debate(
    run: RunDirectory,
    problem: str,
    gold: str,
    policy: list[str],
    critic: list[str],
    *,
    limits: SessionLimits | None = None,
    save: bool = True,
) -> SessionResult:
    debate = DebateSession(
        problem,
        gold_answer=gold,
        policy=PolicyAgent(ScriptedChatCompletionClient(policy)),
        critic=CriticAgent(ScriptedChatCompletionClient(critic), mode="generate"),
        limits=limits,
        models={"policy": "replay:policy.json", "critic": "replay:critic.json"},
    )
    with run.event_log(debate.session_id) as log:
        result = await debate.run(log.write)
    if save:
        run.save(result)
    return result


async def _build_run(root: Path) -> FixtureRun:
    run = RunDirectory(root, meta={"command": "test"})
    solved = await _debate(
        run,
        SOLVED,
        "12",
        ["Step 1: There are 3 pens of 4 sheep.", "Step 2: 3 * 4 = 12, so \\boxed{12}."],
        [OK],
    )
    max_turns = await _debate(
        run,
        STARS,
        "7",
        [
            "Step 1: I see two stars, wait.",
            "Step 2: I see four more stars.",
            "Step 3: That makes six so far.",
        ],
        [OK, OK, OK],
        limits=SessionLimits(max_turns=3),
    )
    journey = await _debate(
        run,
        JOURNEY,
        "12",
        [
            "Step 1: Each pen has 4 sheep.",
            "Step 2: There are 4 pens.",
            "Step 3: 4 * 4 = 16.",
            "Step 2: 3 + 4 = 7 sheep.",
            "Step 2: There are 3 pens, so 3 * 4 = 12 and \\boxed{12}.",
        ],
        [
            OK,
            OK,
            "VERDICT: incorrect\nACTION: backtrack 1\nREASON: There are 3 pens, not 4.",
            "VERDICT: incorrect\nACTION: reflect\nREASON: You should multiply, not add.",
        ],
    )
    crashed = await _debate(
        run, CRASHED, "4", ["Step 1: 2 + 2 = 4, so \\boxed{4}."], [], save=False
    )
    log = run.session_dir(crashed.session_id) / "events.jsonl"
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 40])  # killed while writing session_ended
    return FixtureRun(root, solved, max_turns, journey, crashed.session_id)


def build_run(root: Path) -> FixtureRun:
    """Write the fixture run under `root` (also used by test_stats)."""
    return asyncio.run(_build_run(root))


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return build_run(tmp_path_factory.mktemp("replay") / "run")


def _console() -> Console:
    return Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)


def _replay(
    fixture: FixtureRun, session_id: str, options: ReplayOptions | None = None
) -> tuple[str, list[float]]:
    """Replay into an 80-column string; returns the text and the delays slept."""
    console = _console()
    slept: list[float] = []
    replay_session(
        read_run(fixture.root),
        session_id,
        console,
        options or ReplayOptions(instant=True),
        sleep=slept.append,
    )
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in out.splitlines())
    return out, slept


def _options(**where: object) -> ReplayOptions:
    return ReplayOptions(where=EventFilter(**where), instant=True)  # type: ignore[arg-type]


# -- the session list -----------------------------------------------------------------------


def test_the_list_has_finished_sessions_then_unfinished_ones(fixture_run: FixtureRun) -> None:
    rows = session_overviews(read_run(fixture_run.root))
    ids = [r.session_id for r in rows]
    assert ids == [*(r.session_id for r in fixture_run.finished), fixture_run.crashed_id]
    crashed = rows[3]
    assert crashed.outcome == "unfinished" and not crashed.finished and crashed.truncated
    assert crashed.problem == CRASHED and crashed.stop_reason is None and crashed.turns == 1
    journey = rows[2]
    assert (journey.turns, journey.backtracks, journey.reflections, journey.violations) == (
        5,
        1,
        1,
        0,
    )
    ended = fixture_run.journey.ended
    assert journey.tokens == sum(u.total for u in ended.usage.values())


def test_the_list_table(fixture_run: FixtureRun) -> None:
    console = _console()
    console.print(render_session_list(session_overviews(read_run(fixture_run.root))))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == [
        "#", "session", "problem", "outcome", "stop", "turns", "back", "refl", "viol", "tokens"
    ]  # fmt: skip
    rows = lines[2:]
    assert len(rows) == 4
    assert rows[0].startswith(f"1 {fixture_run.solved.session_id[:8]} A farmer")
    assert "✓ solved" in rows[0] and "verified answer" in rows[0]
    assert "✗ failed" in rows[1] and "max turns" in rows[1]
    assert rows[2].split()[-5:] == ["5", "1", "1", "0", f"{_tokens(fixture_run.journey):,}"]
    assert rows[3].startswith(f"4 {fixture_run.crashed_id[:8]} What is 2 +…")  # fit to 80
    assert "… unfinished" in rows[3] and " — " in rows[3]
    wide = Console(file=io.StringIO(), width=160)
    wide.print(render_session_list(session_overviews(read_run(fixture_run.root))))
    assert STARS in wide.file.getvalue()  # type: ignore[attr-defined]


def _tokens(result: SessionResult) -> int:
    return sum(u.total for u in result.ended.usage.values())


def test_the_replay_command_without_a_session_lists_them(fixture_run: FixtureRun) -> None:
    result = runner.invoke(app, ["replay", str(fixture_run.root)])
    assert result.exit_code == 0, result.output
    assert fixture_run.crashed_id[:8] in result.output and "unfinished" in result.output
    assert f"journey replay {fixture_run.root} 1" in result.output


# -- finding a session ----------------------------------------------------------------------


def _row(session_id: str) -> SessionOverview:
    return SessionOverview(session_id, "p", "solved", "verified_answer", 1, 0, 0, 0, 10)


def test_sessions_are_found_by_id_prefix_or_row_number() -> None:
    rows = [_row("ab12cd"), _row("ab34ef"), _row("9f00aa"), _row("2")]
    assert resolve_session(rows, "ab34").session_id == "ab34ef"
    assert resolve_session(rows, "9f").session_id == "9f00aa"
    assert resolve_session(rows, "1").session_id == "ab12cd"  # row number
    assert resolve_session(rows, "2").session_id == "2"  # a full id wins over a row number
    assert resolve_session(rows, "3").session_id == "9f00aa"
    assert resolve_session(rows, " ab12cd ").session_id == "ab12cd"
    with pytest.raises(ConfigError, match="session prefix 'ab' is ambiguous: it matches ab12cd"):
        resolve_session(rows, "ab")
    with pytest.raises(ConfigError, match="no session 'zz' in this run"):
        resolve_session(rows, "zz")
    with pytest.raises(ConfigError, match="no session '5'"):
        resolve_session(rows, "5")


def test_the_replay_command_takes_a_row_number_or_a_prefix(fixture_run: FixtureRun) -> None:
    by_number = runner.invoke(app, ["replay", str(fixture_run.root), "2", "--no-delay"])
    prefix = fixture_run.max_turns.session_id[:5]
    by_prefix = runner.invoke(app, ["replay", str(fixture_run.root), prefix, "--no-delay"])
    assert by_number.exit_code == 0 and by_prefix.exit_code == 0, by_number.output
    assert STARS in by_number.output and by_number.output == by_prefix.output


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["no-such-run"], DatasetError, "no run directory at 'no-such-run'"),
        (["RUN", "zzzz"], ConfigError, "no session 'zzzz' in this run (4 sessions"),
        (["RUN", "1", "--turns", "7-3"], ConfigError, "--turns range '7-3' is empty"),
        (["RUN", "1", "--turns", "a-b"], ConfigError, "--turns takes a range like 3-7"),
        (["RUN", "1", "--speed", "0"], ConfigError, "--speed must be above 0, got 0.0"),
    ],
)
def test_user_errors_are_journey_errors(
    fixture_run: FixtureRun, args: list[str], error: type[Exception], message: str
) -> None:
    args = [str(fixture_run.root) if a == "RUN" else a for a in args]
    result = runner.invoke(app, ["replay", *args])
    assert isinstance(result.exception, error)
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_a_directory_that_is_no_run_is_refused_and_left_alone(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not a run directory"):
        read_run(tmp_path)
    assert list(tmp_path.iterdir()) == []  # reading never creates run.json or sessions/


def test_the_command_line_prints_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    result = subprocess.run(
        [sys.executable, "-c", "from journey.cli import main; main()", "replay", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no run directory at {str(missing)!r}"


# -- replaying ------------------------------------------------------------------------------


def test_a_replay_looks_like_the_live_view(fixture_run: FixtureRun) -> None:
    out, slept = _replay(fixture_run, fixture_run.journey.session_id)
    live = _console()
    renderer = SessionRenderer(live)
    for event in fixture_run.journey.events:
        renderer.show(event)
    heading, rest = out.split("\n", 1)
    assert heading == f"Replay of session {fixture_run.journey.session_id}"
    assert rest == live.file.getvalue()  # type: ignore[attr-defined]
    assert slept == []


def test_role_filter_keeps_one_role_and_the_ends(fixture_run: FixtureRun) -> None:
    sid = fixture_run.journey.session_id
    critic, _ = _replay(fixture_run, sid, _options(role=Role.CRITIC))
    assert critic.count("╭─ Critic") == 4 and "Policy ·" not in critic
    assert "→ backtrack to step 1 (critic)" in critic and "→ reflect (critic)" in critic
    assert "Verifier" not in critic and "(verifier)" not in critic
    assert "╭─ Problem" in critic and "Session summary" in critic
    assert "--role critic · 8 of 17 events" in critic

    policy, _ = _replay(fixture_run, sid, _options(role=Role.POLICY))
    assert policy.count("Policy · turn") == 5 and "Critic" not in policy and "→" not in policy

    verifier, _ = _replay(fixture_run, sid, _options(role=Role.VERIFIER))
    assert "Verifier: 12 vs gold 12 ✓ correct" in verifier
    assert "→ terminate with answer 12 (verifier)" in verifier
    assert "Policy ·" not in verifier and "Critic" not in verifier


def test_action_filter_keeps_those_decisions_and_the_steps_they_judged(
    fixture_run: FixtureRun,
) -> None:
    sid = fixture_run.journey.session_id
    back, _ = _replay(fixture_run, sid, _options(actions=frozenset({ActionName.BACKTRACK})))
    assert "BACKTRACK → step 1" in back and "→ backtrack to step 1 (critic)" in back
    assert back.count("Policy · turn") == 1 and "Policy · turn 3 · step 3" in back
    assert "4 * 4 = 16." in back
    assert "REFLECT" not in back and "CONTINUE" not in back and "Each pen has" not in back
    assert "╭─ Problem" in back and "Session summary" in back

    both = frozenset({ActionName.BACKTRACK, ActionName.REFLECT})
    out, _ = _replay(fixture_run, sid, _options(actions=both))
    assert "BACKTRACK → step 1" in out and "│ ✗ incorrect   REFLECT" in out
    assert "Policy · turn 3" in out and "Policy · turn 4" in out and "turn 5" not in out

    # the verifier's terminate: the final step, its check and the applied action
    end, _ = _replay(fixture_run, sid, _options(actions=frozenset({ActionName.TERMINATE})))
    assert "Policy · turn 5 · step 2" in end and "Verifier: 12 vs gold 12" in end
    assert "→ terminate with answer 12 (verifier)" in end and "Critic" not in end


def test_turn_filter(fixture_run: FixtureRun) -> None:
    out, _ = _replay(fixture_run, fixture_run.journey.session_id, _options(turns=(3, 4)))
    assert "Policy · turn 3 · step 3" in out and "Policy · turn 4 · step 2" in out
    assert "turn 1 ·" not in out and "turn 2 ·" not in out and "turn 5 ·" not in out
    assert "╭─ Problem" in out and "Session summary" in out


def test_filters_combine(fixture_run: FixtureRun) -> None:
    events = fixture_run.journey.events
    where = EventFilter(role=Role.CRITIC, turns=(4, 5))
    chosen = select_events(events, where)
    assert [e.type for e in chosen] == [
        "problem_posed",
        "critic_verdict",
        "action_applied",
        "session_ended",
    ]
    assert where.describe() == "--role critic --turns 4-5"
    assert select_events(events, EventFilter()) == events


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3-7", (3, 7)), ("3", (3, 3)), ("3-", (3, OPEN_END)), (" 2 - 4 ", (2, 4))],
)
def test_turn_ranges(text: str, expected: tuple[int, int]) -> None:
    assert parse_turn_range(text) == expected


# -- pacing ---------------------------------------------------------------------------------


def test_delays_follow_the_recorded_gaps_capped_and_sped_up() -> None:
    times = [0.0, 1.0, 1.5, 11.5, 11.5, 11.0]
    assert pacing_delays(times) == [0.0, 1.0, 0.5, MAX_GAP, 0.0, 0.0]  # clock going back: 0
    assert pacing_delays(times, speed=4) == [0.0, 0.25, 0.125, MAX_GAP / 4, 0.0, 0.0]
    assert pacing_delays(times, cap=5.0, speed=2) == [0.0, 0.5, 0.25, 2.5, 0.0, 0.0]
    assert pacing_delays(times, instant=True) == [0.0] * 6
    assert pacing_delays([]) == [] and pacing_delays([7.0]) == [0.0]
    with pytest.raises(ConfigError, match="--speed must be above 0, got -1"):
        pacing_delays(times, speed=-1)


def _paced_run(fixture: FixtureRun, root: Path) -> str:
    """The solved session again, its events at chosen times (a slow model's gaps)."""
    run = RunDirectory(root)
    times = [0.0, 2.0, 2.5, 2.5, 12.0, 12.25, 12.25, 12.5]
    events = fixture.solved.events
    assert len(events) == len(times)
    with run.event_log("paced") as log:
        for event, time in zip(events, times, strict=True):
            log.write(event.model_copy(update={"time": time, "session_id": "paced"}))
    return "paced"


def test_replay_sleeps_the_recorded_gaps(fixture_run: FixtureRun, tmp_path: Path) -> None:
    sid = _paced_run(fixture_run, tmp_path / "paced")
    paced = FixtureRun(tmp_path / "paced", *fixture_run.finished, "x")
    # Shown: problem 0, policy 2, critic 2.5, (the critic's continue is not shown),
    # policy 12 (9.5 s capped at 3), verifier 12.25, terminate 12.25, summary 12.5.
    _, slept = _replay(paced, sid, ReplayOptions())
    assert slept == [2.0, 0.5, 3.0, 0.25, 0.25]
    _, slept = _replay(paced, sid, ReplayOptions(speed=4))
    assert slept == [0.5, 0.125, 0.75, 0.0625, 0.0625]
    _, slept = _replay(paced, sid, ReplayOptions(instant=True))
    assert slept == []
    # Filtered: the gaps run from one shown event to the next.
    _, slept = _replay(paced, sid, ReplayOptions(where=EventFilter(role=Role.CRITIC)))
    assert slept == [2.5, 3.0]


def test_step_mode_pauses_between_events_instead_of_sleeping(fixture_run: FixtureRun) -> None:
    pauses: list[None] = []
    slept: list[float] = []
    console = _console()
    replay_session(
        read_run(fixture_run.root),
        fixture_run.solved.session_id,
        console,
        ReplayOptions(),
        sleep=slept.append,
        pause=lambda: pauses.append(None),
    )
    shown = [e for e in fixture_run.solved.events if SessionRenderer(console).renderable(e)]
    assert len(pauses) == len(shown) - 1 and slept == []


def test_step_without_a_terminal_goes_straight_on(fixture_run: FixtureRun) -> None:
    result = runner.invoke(app, ["replay", str(fixture_run.root), "1", "--step"], input="")
    assert result.exit_code == 0, result.output
    assert "Session summary" in result.output and "press Enter" not in result.output


# -- cut-short logs, tree, transcript -------------------------------------------------------


def test_a_cut_short_log_replays_to_its_last_complete_event(fixture_run: FixtureRun) -> None:
    out, _ = _replay(fixture_run, fixture_run.crashed_id, ReplayOptions(instant=True, tree=True))
    assert "Verifier: 4 vs gold 4 ✓ correct" in out
    assert "→ terminate with answer 4 (verifier)" in out
    assert "Session summary" not in out
    assert "⚠ the event log is cut short (a crash mid-write?): replayed up to the last" in out
    assert "⚠ unfinished: the log ends at turn 1 without session_ended" in out
    assert "▶ 1. 2 + 2 = 4, so \\boxed{4}. ⇒ 4 ✓" in out  # the tree, rebuilt from the log


def test_damaged_lines_are_named(fixture_run: FixtureRun, tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "damaged")
    with run.event_log("d") as log:
        for event in fixture_run.solved.events:
            log.write(event.model_copy(update={"session_id": "d"}))
    path = run.session_dir("d") / "events.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = '{"type": "policy_step", "garbage": 1}'
    path.write_text("\n".join(lines) + "\n")
    options = ReplayOptions(instant=True, tree=True)
    out, _ = _replay(FixtureRun(run.root, *fixture_run.finished, "x"), "d", options)
    assert "⚠ damaged log lines skipped: 2" in out
    assert "Session summary" in out and "unfinished" not in out
    assert "⚠ no tree to draw: the event log misses step node 1" in out  # no tree.json here


def test_tree_and_transcript_at_the_end(fixture_run: FixtureRun) -> None:
    options = ReplayOptions(instant=True, tree=True, transcript=True)
    out, _ = _replay(fixture_run, fixture_run.journey.session_id, options)
    tree_and_thought = out.split("Session summary", 1)[1]
    tree_lines = tree_and_thought.split("╭─ Long thought")[0].splitlines()
    assert "└── ▶ 1. Each pen has 4 sheep." in tree_lines
    assert "    ├── 2. There are 4 pens. (abandoned)" in tree_lines
    assert "    │   └── 3. 4 * 4 = 16. (abandoned)" in tree_lines
    assert "    ├── 2. 3 + 4 = 7 sheep. (abandoned)" in tree_lines
    assert "    └── ▶ 2. There are 3 pens, so 3 * 4 = 12 and \\boxed{12}. ⇒ 12 ✓" in tree_lines
    thought = tree_and_thought.split("╭─ Long thought")[1]
    assert "│ Step 3: 4 * 4 = 16." in thought
    assert "│ Wait, step 3 is wrong. There are 3 pens, not 4. Let me go back to step 1" in thought
    assert "│ Hmm, step 2 is wrong. I should multiply, not add. Let me redo step 2." in thought
    plain, _ = _replay(fixture_run, fixture_run.journey.session_id)
    assert "Long thought" not in plain and "(abandoned)" not in plain


def test_trees_rebuilt_from_logs_match_the_saved_ones(fixture_run: FixtureRun) -> None:
    run = RunDirectory(fixture_run.root)
    for result in fixture_run.finished:
        rebuilt = tree_from_events(run.load_events(result.session_id).events)
        assert rebuilt.to_json() == run.load_tree(result.session_id).to_json()
    with pytest.raises(ValueError, match="does not start with problem_posed"):
        tree_from_events(fixture_run.solved.events[1:])
    events = fixture_run.journey.events
    with pytest.raises(ValueError, match="misses step node"):
        tree_from_events([events[0], *events[4:]])  # step 1 lost to a damaged line


def test_the_replay_command_with_every_option(fixture_run: FixtureRun) -> None:
    result = runner.invoke(
        app,
        ["replay", str(fixture_run.root), fixture_run.journey.session_id, "--speed", "1000",
         "--role", "critic", "--action", "backtrack", "--action", "reflect", "--turns", "3-",
         "--tree", "--transcript", "--raw"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    flat = " ".join(out.split())
    assert "--role critic --action backtrack --action reflect --turns 3- · 6 of 17 events" in flat
    assert out.count("╭─ Critic") == 2 and "raw reply" in out and "ACTION: reflect" in out
    assert "(abandoned)" in out and "Long thought" in out
