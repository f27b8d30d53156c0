"""Generated tokens per verified long thought: debate against beam, on the same problems.

    python -m bench.bench_strategies [--dataset SPEC] [--policy embedded] [--max-turns 8]

Runs `journey synth` once per strategy on the same problems, the debate three times: its
policy shown the whole dialogue (rejected steps included), the path with the newest
critique (`--policy-context path`), and the path alone (`fresh`). The defaults: 24
reasoning-gym products of one- and two-digit factors, the embedded policy, the rule
critic), then exports each run's long thoughts (`journey export -f sft`, verified
sessions only): a verified long thought is an exported row. For each strategy it
reports the sessions solved, the long thoughts and how many hold a wrong turn (a
reflection or correction marker), the tokens generated (policy and critic completions,
every request counted, re-asks included), the generated tokens per long thought, and
the wall time; then each debate's tokens per long thought as a share of beam's, measured
in the same run (the issue's target: at most 0.2 at equal yield). The policy samples (the embedded
client's temperature is 0.7), each request with a seed derived from the request itself
(`journey.agents.backends.seeded_client`), so a rerun writes the same sessions whatever
order the 24 concurrent sessions' requests arrive in. Until 2026-12-03 18:00 requests
drew their seeds from the worker's stream in arrival order, and reruns differed (beam
solved 9 and 7 of the same 24 in two runs). `policy_trained_on` holds what `journey eval` would
warn of: how many of the problems a trained policy had among its training rows, and
training data that could not be checked (`journey.training.trained_on`); empty when
the problems are held out or the policy is not a model journey trained.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from journey.evaluation.self_correction import MARKER
from journey.problems import load_problems
from journey.training.trained_on import overlap_lines

DATASET = "rg:products?size=24&seed=77&min_terms=2&max_terms=2&min_digits=1&max_digits=2"
RULE_CRITIC = "function:journey.agents.rule_critics:arithmetic"


def _journey(*args: str) -> str:
    """Run a journey command; its stdout, or the command's own error and exit."""
    done = subprocess.run(
        [sys.executable, "-m", "journey", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"journey {args[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


VARIANTS: dict[str, tuple[str, ...]] = {
    "debate": ("--strategy", "debate", "--policy-context", "dialogue"),
    "debate-path": ("--strategy", "debate", "--policy-context", "path"),
    "debate-fresh": ("--strategy", "debate", "--policy-context", "fresh"),
    "beam": ("--strategy", "beam"),
}
"""Each run's name and its strategy options."""


def one_strategy(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    run = folder / name
    started = time.perf_counter()
    _journey(
        "synth", "--dataset", args.dataset, *VARIANTS[name], "--policy", args.policy,
        "--critic", args.critic, "--critic-mode", "generate", "--max-turns", str(args.max_turns),
        "--concurrency", str(args.concurrency), "--out", str(run), "--no-progress",
    )  # fmt: skip
    wall = time.perf_counter() - started
    stats = json.loads(_journey("stats", str(run), "--json"))
    rows_file = folder / f"{name}.jsonl"
    _journey("export", str(run), "-f", "sft", "-o", str(rows_file), "--allow-empty", "--json")
    thoughts = [
        " ".join(message["content"] for message in json.loads(line)["completion"])
        for line in rows_file.read_text().splitlines()
    ]
    generated = {role: tokens["completion_tokens"] for role, tokens in stats["tokens"].items()}
    total = sum(generated.values())
    return {
        "strategy": name,
        "sessions": stats["sessions"],
        "solved": stats["solved"],
        "long_thoughts": len(thoughts),
        "with_wrong_turn": sum(bool(MARKER.search(thought)) for thought in thoughts),
        "generated_tokens": generated,
        "generated_per_long_thought": round(total / len(thoughts), 1) if thoughts else None,
        "policy_generated_per_long_thought": (
            round(generated.get("policy", 0) / len(thoughts), 1) if thoughts else None
        ),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--policy", default="embedded")
    parser.add_argument("--critic", default=RULE_CRITIC)
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--keep", type=Path, help="Keep the runs here (default: a temp dir).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        rows = {name: one_strategy(name, args, folder) for name in VARIANTS}
    beam = rows["beam"]["generated_per_long_thought"]
    shares = {
        f"{name}_over_beam": round(row["generated_per_long_thought"] / beam, 3)
        if row["generated_per_long_thought"] and beam
        else None
        for name, row in rows.items()
        if name != "beam"
    }
    problems = [record.problem for record in load_problems(args.dataset).records]
    report = {
        "dataset": args.dataset,
        "policy_trained_on": overlap_lines(args.policy, problems),
        "strategies": list(rows.values()),
        **shares,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
