"""`journey synth` against a server of known capacity: throughput, speed-up, CPU, prefix reuse.

    python -m bench.bench_server [--problems 400] [--slots 32] [--concurrency 128]

Starts `bench._capacity_server` in a subprocess (so its CPU is not counted as the
orchestration's), then, in one run:

1. runs a debate synthesis (`SynthesisRunner`, OpenAI backend, critic generating
   verdicts) over `--problems` problems with `--concurrency` sessions at once;
2. saturates it with raw concurrent requests, policy and critic in the proportion the
   synthesis sent (critic replies are shorter, so the mix sets the token capacity), to
   measure its token throughput directly, in steady state;
3. runs a few sessions one at a time, the sequential baseline.

Throughput is completion tokens served per second of wall time, counted by the
server. The synthesis is charged its whole wall time, start-up and the last sessions'
tail included, so more problems bring the ratio closer to the steady state. CPU per
model call is this process's CPU time during step 1 divided by the requests it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from journey.problems import load_problems
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.sessions import SessionLimits


@dataclass
class ServerRun:
    """What the server saw during one measured stretch."""

    wall: float
    tokens: int
    requests: int
    busy: float
    cpu: float

    @property
    def throughput(self) -> float:
        return self.tokens / self.wall


@contextmanager
def capacity_server(slots: int, rate: float, latency: float) -> Iterator[str]:
    """A started capacity server subprocess; yields its base URL."""
    command = [
        sys.executable, "-m", "bench._capacity_server",
        "--slots", str(slots), "--rate", str(rate), "--latency", str(latency),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"capacity server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_stats(base_url: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(f"{base_url}/stats", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def measured(base_url: str, into: list[ServerRun]) -> Iterator[None]:
    """Measure the server's counters, wall time and this process's CPU around a block."""
    before = server_stats(base_url)
    cpu, started = time.process_time(), time.perf_counter()
    yield
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = server_stats(base_url)
    into.append(
        ServerRun(
            wall=wall,
            tokens=after["completion_tokens"] - before["completion_tokens"],
            requests=after["requests"] - before["requests"],
            busy=after["busy_seconds"] - before["busy_seconds"],
            cpu=cpu,
        )
    )


async def saturate(
    base_url: str, workers: int, seconds: float, critic_share: float, warmup: float = 2.0
) -> ServerRun:
    """`workers` loops sending debate-like requests back to back; the server's counts over
    `seconds` of steady state (after `warmup`, before the loops stop), so neither the
    ramp-up nor the drain is charged to the capacity."""
    async with openai.AsyncOpenAI(
        api_key="EMPTY", base_url=base_url, max_retries=0, timeout=60
    ) as client:
        stopping = asyncio.Event()

        async def loop(worker: int) -> None:
            turn, draw = 0, random.Random(worker)
            while not stopping.is_set():
                model = "critic" if draw.random() < critic_share else "policy"
                problem = f"Problem: What is {worker} + {turn}?\n\nWrite Step 1."
                if model == "critic":
                    problem += "\n\nSteps:\nStep 1: fine.\n\nJudge only the newest step, step 1."
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": problem}]
                )
                turn += 1

        loops = asyncio.gather(*(loop(w) for w in range(workers)))
        await asyncio.sleep(warmup)
        before, started = await asyncio.to_thread(server_stats, base_url), time.perf_counter()
        await asyncio.sleep(seconds)
        after, wall = await asyncio.to_thread(server_stats, base_url), time.perf_counter() - started
        stopping.set()
        await loops
    return ServerRun(
        wall=wall,
        tokens=after["completion_tokens"] - before["completion_tokens"],
        requests=after["requests"] - before["requests"],
        busy=after["busy_seconds"] - before["busy_seconds"],
        cpu=0.0,
    )


def write_dataset(path: Path, count: int) -> Path:
    lines = [
        json.dumps({"problem": f"What is {k} + {2 * k + 7}?", "answer": str(3 * k + 7)})
        for k in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def synthesise(base_url: str, dataset: Path, out: Path, concurrency: int) -> dict[str, Any]:
    options = SynthesisOptions(
        policy=f"openai:policy@{base_url}?timeout=120",
        critic=f"openai:critic@{base_url}?timeout=120",
        critic_mode="generate",
        concurrency=concurrency,
        limits=SessionLimits(max_turns=12),
        step_tokens=160,
    )
    runner = SynthesisRunner(options)
    report = asyncio.run(runner.run(out, load_problems(dataset).records))
    return report.model_dump()


@contextmanager
def sampled(base_url: str, every: float = 0.5) -> Iterator[list[tuple[float, int]]]:
    """(time, completion tokens served) every `every` seconds while the block runs."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.wait(every):
            samples.append((time.perf_counter(), server_stats(base_url)["completion_tokens"]))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def steady_throughput(samples: list[tuple[float, int]], low: float, high: float) -> float:
    """Tokens/s between the samples nearest to fractions `low` and `high` of the run."""
    if len(samples) < 3:
        return 0.0
    first, last = samples[0][0], samples[-1][0]
    a = min(samples, key=lambda s: abs(s[0] - (first + low * (last - first))))
    b = min(samples, key=lambda s: abs(s[0] - (first + high * (last - first))))
    return (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0


def run(
    problems: int = 400,
    slots: int = 32,
    concurrency: int = 128,
    rate: float = 50.0,
    latency: float = 0.2,
    sequential: int = 3,
    saturate_seconds: float = 8.0,
) -> dict[str, Any]:
    """All three measurements against one server; returns the figures."""
    runs: list[ServerRun] = []
    with tempfile.TemporaryDirectory() as tmp, capacity_server(slots, rate, latency) as url:
        root = Path(tmp)
        dataset = write_dataset(root / "problems.jsonl", problems)
        with measured(url, runs), sampled(url) as samples:
            report = synthesise(url, dataset, root / "concurrent", concurrency)
        synth = runs[-1]
        steady = steady_throughput(samples, 0.1, 0.8)
        stats = server_stats(url, "POST")  # a POST also resets the prefix-reuse counts
        reuse, roles = stats["prefix_reuse"], stats["by_role"]
        critic_share = roles.get("critic", 0) / max(sum(roles.values()), 1)
        capacity = asyncio.run(saturate(url, 2 * slots, saturate_seconds, critic_share))
        few = write_dataset(root / "few.jsonl", sequential)
        with measured(url, runs):
            synthesise(url, few, root / "sequential", 1)
        alone = runs[-1]
    return {
        "server": {"slots": slots, "rate": rate, "latency": latency},
        "capacity_tokens_per_s": capacity.throughput,
        "synth_tokens_per_s": synth.throughput,
        "sequential_tokens_per_s": alone.throughput,
        "capacity_ratio": synth.throughput / capacity.throughput,
        "steady_capacity_ratio": steady / capacity.throughput,
        "slot_utilisation": synth.busy / (slots * synth.wall),
        "capacity_slot_utilisation": capacity.busy / (slots * capacity.wall),
        "speedup_vs_sequential": synth.throughput / alone.throughput,
        "cpu_ms_per_call": 1000 * synth.cpu / max(synth.requests, 1),
        "requests": synth.requests,
        "critic_share": critic_share,
        "wall_s": synth.wall,
        "sessions": report["finished"],
        "solved": report["solved"],
        "errors": report["errors"],
        "concurrency": concurrency,
        "prefix_reuse": reuse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=400)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=128,
        help="Sessions at once; 4x the slots keeps the server full (docs/benchmarks.md).",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="Tokens/s per slot.")
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds per request.")
    options = parser.parse_args()
    figures = run(
        options.problems, options.slots, options.concurrency, options.rate, options.latency
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
