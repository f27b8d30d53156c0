"""`journey synth --ray`: N workers against N fixed-capacity servers, as a share of N x one.

    python -m bench.bench_ray [--workers 1,2,4] [--problems-per-worker 24]

For each N, starts N capacity servers (`bench._capacity_server`, each `--slots` slots
at `--rate` tokens/s a slot) and runs a debate synthesis of N x `--problems-per-worker`
problems on a local Ray cluster with N workers, each role routed over all N servers
(`A,B,...` specs). Throughput is the completion tokens the servers served over the
run's wall time, actor start-up included; the figure is throughput(N) / (N x
throughput(1)), measured in the same run. Weak scaling: the work grows with N, so a
perfect cluster scores 1.0.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.bench_server import capacity_server, server_stats, write_dataset
from journey.agents.backends.cached_client import CacheMode
from journey.problems import load_problems
from journey.runs import SynthesisOptions
from journey.runs.ray_synthesis import RayOptions, run_on_ray
from journey.runs.response_cache import CacheSettings
from journey.sessions import SessionLimits


def one_size(workers: int, problems_per_worker: int, slots: int, rate: float) -> dict[str, Any]:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        urls = [stack.enter_context(capacity_server(slots, rate, 0.02)) for _ in range(workers)]
        policy = ",".join(f"openai:policy@{url}?concurrency={slots}" for url in urls)
        critic = ",".join(f"openai:critic@{url}?concurrency={slots}" for url in urls)
        dataset = write_dataset(Path(tmp) / "d.jsonl", workers * problems_per_worker)
        problems = load_problems(dataset).records
        options = SynthesisOptions(
            policy=policy,
            critic=critic,
            critic_mode="generate",
            concurrency=2 * slots,
            limits=SessionLimits(max_turns=12),
            cache=CacheSettings(mode=CacheMode.OFF),  # every request reaches a server
        )
        before = [server_stats(url)["completion_tokens"] for url in urls]
        started = time.perf_counter()
        report = run_on_ray(
            options,
            problems,
            Path(tmp) / "run",
            RayOptions(workers=workers, units=workers),
        )
        wall = time.perf_counter() - started
        served = sum(server_stats(url)["completion_tokens"] for url in urls) - sum(before)
        return {
            "workers": workers,
            "sessions": report.ran,
            "solved": report.solved,
            "errors": report.errors,
            "wall_s": round(wall, 2),
            "tokens": served,
            "tokens_per_s": served / wall,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--problems-per-worker", type=int, default=24)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--rate", type=float, default=40.0)
    args = parser.parse_args()
    import ray

    sizes = [int(n) for n in args.workers.split(",")]
    ray.init(num_cpus=max(sizes), include_dashboard=False, log_to_driver=False)
    rows = [one_size(n, args.problems_per_worker, args.slots, args.rate) for n in sizes]
    ray.shutdown()
    base = next(r for r in rows if r["workers"] == 1)["tokens_per_s"]
    for row in rows:
        row["share_of_n_times_one"] = round(row["tokens_per_s"] / (row["workers"] * base), 3)
        row["tokens_per_s"] = round(row["tokens_per_s"], 1)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
