"""How fast `journey browse` opens a big run: `python -m bench.bench_browse [--sessions 10000]`.

Writes a synthetic run of N sessions (sessions.jsonl plus a small folder per session,
copied from one real scripted debate with its problem and id replaced: fast) and a
second run with the same problems (an "iteration 2"), then measures, in one process:

- baseline: reading sessions.jsonl and `json.loads` on every line, nothing else;
- model: `load_run` (validated summaries, unfinished sessions found), pairing and
  sorting the table;
- first screen: `BrowseApp` started with Textual's pilot at 80x24 until the table shows;
- compare screen: the same with two runs side by side;
- keyword filter: in the app, the time from enter to the filtered table, and the slowest
  of 20 cursor moves made meanwhile (the search runs in a worker thread); in the model,
  the first search over every transcript (files read), and the same search again (cached).

Each time is the best of `--repeat` tries; ratios are against the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.strip import Strip

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.runs import RunDirectory
from journey.sessions import DebateSession

OK = "VERDICT: correct\nACTION: continue\nREASON: The step is right."
TEMPLATE_PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?"
OUTCOMES = [("solved", "verified_answer"), ("failed", "max_turns"), ("failed", "critic_terminated")]


async def _template(root: Path) -> tuple[str, dict[str, str]]:
    """One real session's files, to copy N times."""
    run = RunDirectory(root)
    debate = DebateSession(
        TEMPLATE_PROBLEM,
        gold_answer="12",
        policy=PolicyAgent(
            ScriptedChatCompletionClient(
                ["Step 1: There are 3 pens of 4 sheep.", "Step 2: 3 * 4 = 12, so \\boxed{12}."]
            )
        ),
        critic=CriticAgent(ScriptedChatCompletionClient([OK]), mode="generate"),
    )
    with run.event_log(debate.session_id) as log:
        result = await debate.run(log.write)
    run.save(result)
    folder = run.session_dir(debate.session_id)
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    return debate.session_id, files


def write_synthetic_run(root: Path, sessions: int, *, seed: int = 0, unfinished: int = 5) -> Path:
    """Write a run of `sessions` sessions under `root`; the same seed gives the same problems.

    Outcomes, turns, backtracks and so on vary at random (the index lines are what the
    table shows); about a third of the transcripts say "wait". The last `unfinished`
    sessions get an event log and no index line.
    """
    template = root.parent / f".{root.name}-template"
    template_id, files = asyncio.run(_template(template))
    template_summary = json.loads((template / "sessions.jsonl").read_text())
    rng = random.Random(seed)
    sessions_root = root / "sessions"
    sessions_root.mkdir(parents=True, exist_ok=True)
    with (root / "sessions.jsonl").open("w", encoding="utf-8") as index:
        for i in range(sessions):
            session_id = f"{i:08x}{template_id[8:]}"
            problem = f"Problem {i}: a farmer has {i % 97 + 2} pens of sheep. How many sheep?"
            folder = sessions_root / session_id
            folder.mkdir()
            for name, text in files.items():
                text = text.replace(template_id, session_id).replace(TEMPLATE_PROBLEM, problem)
                if name == "transcript.md" and rng.random() < 0.33:
                    text += "\nWait, let me check that again.\n"
                (folder / name).write_text(text, encoding="utf-8")
            if i >= sessions - unfinished:
                continue
            outcome, stop = rng.choice(OUTCOMES)
            summary = dict(template_summary)
            summary.update(
                session_id=session_id,
                problem=problem,
                outcome=outcome,
                stop_reason=stop,
                turns=rng.randint(1, 30),
                max_depth=rng.randint(1, 12),
                backtracks=rng.randint(0, 5),
                reflections=rng.randint(0, 5),
                transcript_chars=rng.randint(200, 20_000),
                usage={
                    "policy": {"prompt_tokens": rng.randint(500, 50_000), "completion_tokens": 300},
                    "critic": {"prompt_tokens": rng.randint(500, 50_000), "completion_tokens": 90},
                },
            )
            index.write(json.dumps(summary) + "\n")
    return root


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _baseline(root: Path) -> None:
    with (root / "sessions.jsonl").open("rb") as lines:
        for line in lines:
            json.loads(line)


async def _first_screen(runs: list[Path]) -> tuple[float, float]:
    """From opening the runs on disk: seconds to the table's first drawn row, and seconds
    until the app is idle (the rates worker, which reads every transcript, competes then)."""
    from journey.view.browse.app import BrowseApp
    from journey.view.browse.model import load_run
    from journey.view.browse.table import SessionTable

    painted: list[float] = []
    draw = SessionTable.render_line

    def timed_draw(table: SessionTable, y: int) -> Strip:
        if table.rows and not painted:
            painted.append(time.perf_counter())
        return draw(table, y)

    start = time.perf_counter()
    SessionTable.render_line = timed_draw  # type: ignore[method-assign]
    try:
        app = BrowseApp([load_run(path) for path in runs])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.table_rows() > 0
            idle = time.perf_counter() - start
            # Let the rates worker finish here so it does not slow down the next try.
            await app.workers.wait_for_complete()
    finally:
        SessionTable.render_line = draw  # type: ignore[method-assign]
    return painted[0] - start, idle


def _best_screen(runs: list[Path], repeat: int) -> tuple[float, float]:
    tries = [asyncio.run(_first_screen(runs)) for _ in range(repeat)]
    return min(t[0] for t in tries), min(t[1] for t in tries)


async def _keys_during_search(run: Path, presses: int = 20) -> tuple[float, float, int]:
    """Start a transcript search, then move the cursor while it runs.

    Returns:
        The slowest key press (s), the search's time to its answer (s), and the rows found.
    """
    from journey.view.browse.app import BrowseApp
    from journey.view.browse.model import load_run

    app = BrowseApp([load_run(run)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()  # the rates, read first
        await pilot.press("slash", *"wait")
        start = time.perf_counter()
        await pilot.press("enter")
        slowest = 0.0
        for _ in range(presses):
            pressed = time.perf_counter()
            await pilot.press("down")
            slowest = max(slowest, time.perf_counter() - pressed)
        await app.workers.wait_for_complete()
        await pilot.pause()
        return slowest, time.perf_counter() - start, app.table_rows()


def measure(runs: tuple[Path, Path], tiny: Path, repeat: int) -> dict[str, float]:
    """Seconds per step (best of `repeat`) over a pair of big runs and a tiny one."""
    from journey.view.browse import SortKey, TranscriptSearch, load_run, pair_runs, sort_pairs

    first, second = runs

    def model() -> None:
        run = load_run(first)
        sort_pairs(pair_runs(run.rows), SortKey.TOKENS, descending=True)

    times = {
        "baseline: json.loads of sessions.jsonl": _best(lambda: _baseline(first), repeat),
        "model: load_run + pair + sort": _best(model, repeat),
    }
    for name, paths in (
        ("10-session run (Textual's own start)", [tiny]),
        ("one run", [first]),
        ("two runs", [first, second]),
    ):
        painted, idle = _best_screen(paths, repeat)
        times[f"first rows drawn, {name}"] = painted
        times[f"first screen idle, {name}"] = idle
    _, alone, _ = asyncio.run(_keys_during_search(first, presses=0))
    times["app: search 'wait' to its answer, no keys"] = alone
    slowest, searched, found_rows = asyncio.run(_keys_during_search(first))
    times["app: search 'wait', 20 keys pressed meanwhile"] = searched
    times["app: slowest of those key presses"] = slowest
    print(f"(the app's search showed {found_rows:,} rows)")
    search = TranscriptSearch(load_run(first))
    start = time.perf_counter()
    found = search.matching("wait")
    times["keyword filter 'wait', first time"] = time.perf_counter() - start
    start = time.perf_counter()
    search.matching("wait")
    times["keyword filter 'wait', cached"] = time.perf_counter() - start
    print(f"(the search found {len(found or ())} of {len(search.run.rows)} transcripts)")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="Write the runs here (default: a temp dir).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        start = time.perf_counter()
        first = write_synthetic_run(base / "iteration-1", args.sessions, seed=1)
        second = write_synthetic_run(base / "iteration-2", args.sessions, seed=2)
        print(f"wrote 2 runs of {args.sessions:,} sessions in {time.perf_counter() - start:.1f} s")
        tiny = write_synthetic_run(base / "tiny", 10, seed=3)
        times = measure((first, second), tiny, args.repeat)
    baseline = times["baseline: json.loads of sessions.jsonl"]
    width = max(len(k) for k in times)
    for name, seconds in times.items():
        print(f"{name:<{width}}  {seconds * 1000:9.1f} ms  {seconds / baseline:7.1f}x baseline")


if __name__ == "__main__":
    main()
