"""`journey synth` against llama.cpp's `llama-server`, and the embedded model against it.

    python -m bench.bench_llama [--problems 16] [--max-turns 3] [--step-tokens 64]

Two ratios, on the embedded model's GGUF (the file `journey model pull` caches) served
by `llama-server` on loopback with 8 slots and this machine's cores, measured in one run:

1. synthesis vs the server's own capacity: a debate synthesis of MATH500 problems
   (`../shared/data/math500.jsonl`), greedy, 8 sessions at once, both roles on the
   server (critic scoring its labels through log-probs), generated tokens/s; then the
   very requests it sent (recorded from the wire) sent again raw, each session's in its
   order, 8 sessions at once and back to back: the server's saturated throughput on the
   same work, with no orchestration between requests (on a fresh server, so that
   neither run finds the other's prompts cached). Target >= 0.95; the median of
   `--repeats` such pairs (default 3), as batched greedy decoding is not deterministic.
2. embedded vs llama-server: the same synthesis on the embedded backend
   (`embedded?temperature=0`, same cores, 8 sessions batched), over the synthesis
   served by llama-server.

Each synthesis is compared with the replay of its own requests, so the capacity ratio
compares equal work. Without the `llama-server` binary (`$JOURNEY_LLAMA_SERVER`,
`../shared/bin/`, PATH) or the GGUF file, the figures are a skip reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import openai

from journey.agents.backends.llama_server import (
    LlamaServer,
    embedded_gguf_file,
    find_llama_server,
)
from journey.agents.backends.openai_compat import OpenAICompatibleClient
from journey.errors import ModelUnavailableError
from journey.problems import ProblemRecord, load_problems
from journey.runs import SynthesisOptions, SynthesisReport, SynthesisRunner
from journey.sessions import SessionLimits

REPO = Path(__file__).resolve().parents[1]
SHARED_BINARY = REPO.parent / "shared" / "bin" / "llama-server"
MATH500 = REPO.parent / "shared" / "data" / "math500.jsonl"
MODEL = "smollm2-135m-instruct"  # llama.cpp serves its one model whatever it is called
SLOTS = 8


class WireLog:
    """Chat-completion bodies as sent, in order (an httpx request hook)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: Any) -> None:  # an httpx Request
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))

    def client(self) -> openai.DefaultAsyncHttpxClient:
        """An HTTP client for the openai SDK that logs what it sends here."""
        return openai.DefaultAsyncHttpxClient(event_hooks={"request": [self]})


def generating(body: Mapping[str, Any]) -> bool:
    """A request whose tokens a synthesis counts: not a one-token label scoring."""
    return not body.get("logprobs")


async def synthesise(
    problems: Sequence[ProblemRecord],
    out: Path,
    *,
    limits: SessionLimits,
    step_tokens: int,
    policy: str = "",
    critic: str = "",
    clients: Mapping[str, OpenAICompatibleClient] | None = None,
) -> SynthesisReport:
    """One synthesis, 8 sessions at once; given clients are closed afterwards."""
    options = SynthesisOptions(
        policy=policy or "embedded",
        critic=critic or "embedded",
        concurrency=SLOTS,
        limits=limits,
        step_tokens=step_tokens,
    )
    runner = SynthesisRunner(options, clients=clients)
    try:
        return await runner.run(out, problems)
    finally:
        for client in (clients or {}).values():
            await client.close()


async def replay(base_url: str, sessions: Sequence[Sequence[dict[str, Any]]]) -> dict[str, float]:
    """Send each session's bodies in order, `SLOTS` sessions at once, back to back."""
    queue: asyncio.Queue[Sequence[dict[str, Any]]] = asyncio.Queue()
    for bodies in sessions:
        queue.put_nowait(bodies)
    tokens = 0
    requests = 0
    async with openai.DefaultAsyncHttpxClient(base_url=base_url, timeout=None) as http:

        async def worker() -> None:
            nonlocal tokens, requests
            while not queue.empty():
                for body in queue.get_nowait():
                    response = await http.post("/chat/completions", json=body)
                    response.raise_for_status()
                    requests += 1
                    if generating(body):
                        tokens += response.json()["usage"]["completion_tokens"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(SLOTS)))
        wall = time.perf_counter() - started
    return {"tokens_per_s": tokens / wall, "tokens": tokens, "requests": requests, "wall_s": wall}


def by_session(
    bodies: Sequence[dict[str, Any]], problems: Sequence[ProblemRecord]
) -> list[list[dict[str, Any]]]:
    """The recorded bodies grouped by the problem they quote, each group in sending order."""
    groups: dict[str, list[dict[str, Any]]] = {p.problem: [] for p in problems}
    for body in bodies:
        text = json.dumps(body["messages"], ensure_ascii=False)
        quoted = [p for p in groups if json.dumps(p, ensure_ascii=False)[1:-1] in text]
        if len(quoted) != 1:
            raise RuntimeError(f"a request quotes {len(quoted)} problems, not one")
        groups[quoted[0]].append(body)
    return [group for group in groups.values() if group]


def capacity_pair(
    binary: Path,
    gguf: Path,
    records: Sequence[ProblemRecord],
    limits: SessionLimits,
    step_tokens: int,
) -> tuple[SynthesisReport, dict[str, float]]:
    """A synthesis served by a fresh llama-server, and its requests replayed raw on another."""
    wire = WireLog()
    with tempfile.TemporaryDirectory() as tmp, LlamaServer(binary, gguf, parallel=SLOTS) as server:
        clients = {
            role: OpenAICompatibleClient(
                MODEL,
                api_key="EMPTY",
                base_url=server.base_url,
                timeout=600.0,
                temperature=0.0,
                logprobs=role == "critic",
                http_client=wire.client(),
            )
            for role in ("policy", "critic")
        }
        served = asyncio.run(
            synthesise(
                records,
                Path(tmp) / "served",
                limits=limits,
                step_tokens=step_tokens,
                clients=clients,
            )
        )
    # A fresh server for the replay: the first one's slots still hold the synthesis's
    # prompts, which would spare the replay their prefill.
    with LlamaServer(binary, gguf, parallel=SLOTS) as server:
        raw = asyncio.run(replay(server.base_url, by_session(wire.bodies, records)))
    return served, raw


def run(
    problems: int = 16,
    max_turns: int = 3,
    step_tokens: int = 64,
    embedded: bool = True,
    repeats: int = 3,
) -> dict[str, Any]:
    """Both ratios, or {"skipped": reason} without a binary or a GGUF file; the capacity
    ratio is the median of `repeats` synthesis/replay pairs."""
    binary = find_llama_server(SHARED_BINARY)
    if binary is None:
        return {"skipped": f"no llama-server binary ($JOURNEY_LLAMA_SERVER, {SHARED_BINARY})"}
    try:
        gguf = embedded_gguf_file()
    except ModelUnavailableError as error:
        return {"skipped": f"no GGUF file: {error}"}
    records = load_problems(MATH500).records[:problems]
    limits = SessionLimits(max_turns=max_turns, max_tokens=100_000)
    threads = os.cpu_count() or 1
    figures: dict[str, Any] = {"problems": len(records), "threads": threads, "slots": SLOTS}
    pairs = [
        capacity_pair(binary, gguf, records, limits, step_tokens) for _ in range(max(repeats, 1))
    ]
    # llama.cpp's batched greedy decoding is not deterministic, so each synthesis writes a
    # slightly different debate: each is compared with the raw replay of its own requests,
    # and the median pair is reported (one pair on 2 cores ranged 0.86-1.23).
    ratios = [synth.tokens_per_second / raw["tokens_per_s"] for synth, raw in pairs]
    served, raw = pairs[sorted(range(len(pairs)), key=ratios.__getitem__)[len(pairs) // 2]]
    figures |= {
        "synth_tokens_per_s": served.tokens_per_second,
        "synth_tokens": served.generated_tokens,
        "synth_wall_s": served.wall_time,
        "synth_errors": served.errors,
        "raw_tokens_per_s": raw["tokens_per_s"],
        "raw_tokens": raw["tokens"],
        "raw_requests": raw["requests"],
        "capacity_ratio": statistics.median(ratios),
        "capacity_ratios": [round(r, 3) for r in ratios],
    }
    if embedded:
        with tempfile.TemporaryDirectory() as tmp:
            local = asyncio.run(
                synthesise(
                    records,
                    Path(tmp) / "embedded",
                    limits=limits,
                    step_tokens=step_tokens,
                    policy="embedded?temperature=0",
                    critic="embedded?temperature=0",
                )
            )
        figures |= {
            "embedded_tokens_per_s": local.tokens_per_second,
            "embedded_tokens": local.generated_tokens,
            "embedded_wall_s": local.wall_time,
            "embedded_vs_llama": local.tokens_per_second / served.tokens_per_second,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16, help="MATH500 problems (debates).")
    parser.add_argument("--max-turns", type=int, default=3, help="Policy turns per debate.")
    parser.add_argument("--step-tokens", type=int, default=64, help="Tokens per step.")
    parser.add_argument("--skip-embedded", action="store_true", help="llama-server only.")
    parser.add_argument("--repeats", type=int, default=3, help="Synthesis/replay pairs.")
    options = parser.parse_args()
    figures = run(
        options.problems,
        options.max_turns,
        options.step_tokens,
        not options.skip_embedded,
        options.repeats,
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
