"""Run every benchmark and print one table: `python -m bench [--quick] [--skip-embedded]`.

Each ratio is against a baseline measured in the same run, on the same machine:

- server: `journey synth` against `bench._capacity_server` (see `bench.bench_server`),
  as a share of the server's measured capacity and as a speed-up over one session
  at a time, with the orchestration's CPU time per model call;
- embedded: a debate synthesis on the embedded model with concurrent sessions batched
  (generated tokens/s), against the same synthesis one request at a time
  (`max_batch_size=1`; this pair runs twice and keeps each one's best), with the
  prefix cache off, with one `generate` call per batch instead of continuous batching,
  with joining prompts prefilled in passes of their own (`prefill_in_step=false`), and
  with plain linear layers instead of oneDNN-packed ones (`packed_weights=false`): the
  engine's decode-path switches, which only the benchmark's own model backend takes
  (`bench._engine_switches`), and
  against raw batched `generate` at the same batch size on prompts as long as the
  synthesis's, its linear layers packed as well (`bench.bench_embedded`): what the
  orchestration costs over the model's own work. All decode greedily, so
  every synthesis generates the same tokens and the ratios compare equal work
  (sampled, each variant would write a different debate);
- prefix reuse: share of each request's prompt repeating the previous request of the
  same session, per role (measured by the capacity server during the synthesis);
- llama-server (`bench.bench_llama`): a MATH500 debate synthesis served by llama.cpp's
  server on the embedded model's GGUF, as a share of that server's throughput on the
  same requests sent raw, and the embedded backend's synthesis over it (skipped, with
  the reason, without the binary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import bench_llama, bench_server


async def one_request_rate(max_tokens: int) -> float:
    """Tokens/s of one request at a time through the embedded client."""
    from autogen_core.models import UserMessage

    from bench.bench_embedded import PROMPTS
    from journey.agents.backends.transformers_client import TransformersChatCompletionClient

    client = TransformersChatCompletionClient.embedded(temperature=0.0)
    await client.load()
    tokens, started = 0, time.perf_counter()
    for prompt in PROMPTS[:2]:
        result = await client.create(
            [UserMessage(content=prompt, source="user")],
            extra_create_args={"max_tokens": max_tokens},
        )
        tokens += result.usage.completion_tokens
    elapsed = time.perf_counter() - started
    await client.close()
    return tokens / elapsed


def generation_prompt_tokens(run: Path) -> int:
    """Mean prompt length of a run's generating requests, from its sessions' event logs."""
    lengths = [
        usage["prompt_tokens"]
        for log in run.glob("sessions/*/events.jsonl")
        for line in log.read_text().splitlines()
        if (usage := json.loads(line).get("usage")) and usage.get("completion_tokens", 0) > 0
    ]
    return round(statistics.mean(lengths))


def embedded(sessions: int, max_tokens: int) -> dict[str, float]:
    """Synthesis tokens/s on the embedded model against the same synthesis without
    batching and without the prefix cache, and against raw batched `generate`."""
    import torch

    from bench import _engine_switches
    from bench.bench_embedded import raw_generate
    from journey.agents.backends.transformers_client import AUTO_DTYPE
    from journey.problems import load_problems
    from journey.runs import SynthesisOptions, SynthesisRunner
    from journey.sessions import SessionLimits

    def synthesis(model: str) -> tuple[float, int]:
        """Generated tokens/s of a debate synthesis, and its mean generating prompt."""
        with tempfile.TemporaryDirectory() as tmp:
            dataset = bench_server.write_dataset(Path(tmp) / "p.jsonl", sessions)
            options = SynthesisOptions(
                policy=model,
                critic=model,
                concurrency=sessions,
                limits=SessionLimits(max_turns=3, max_tokens=100_000),
                step_tokens=max_tokens,
            )
            runner = SynthesisRunner(options)
            report = asyncio.run(runner.run(Path(tmp) / "run", load_problems(dataset).records))
            return report.tokens_per_second, generation_prompt_tokens(Path(tmp) / "run")

    _engine_switches.register()
    switched = f"{_engine_switches.NAME}?temperature=0"
    dtype = getattr(torch, AUTO_DTYPE)
    synth, prompt_tokens = synthesis("embedded?temperature=0")
    unbatched, _ = synthesis("embedded?temperature=0&max_batch_size=1")
    uncached, _ = synthesis("embedded?temperature=0&prefix_cache_mb=0")
    generate_calls, _ = synthesis(f"{switched}&continuous_batching=false")
    apart, _ = synthesis(f"{switched}&prefill_in_step=false")
    unpacked, _ = synthesis(f"{switched}&packed_weights=false")
    # The headline pair runs twice, at both ends of the part, and keeps each one's best:
    # this machine's speed drifts by up to 20% within minutes (docs/benchmarks.md).
    synth = max(synth, synthesis("embedded?temperature=0")[0])
    unbatched = max(unbatched, synthesis("embedded?temperature=0&max_batch_size=1")[0])
    matched = raw_generate(dtype, max_tokens, prompt_tokens=prompt_tokens)
    short = raw_generate(dtype, max_tokens)
    alone = asyncio.run(one_request_rate(max_tokens))
    return {
        "synth_tokens_per_s": synth,
        "synth_prompt_tokens": prompt_tokens,
        "synth_without_prefix_cache_tokens_per_s": uncached,
        "synth_with_generate_calls_tokens_per_s": generate_calls,
        "synth_prefilled_apart_tokens_per_s": apart,
        "synth_unpacked_tokens_per_s": unpacked,
        "synth_one_request_at_a_time_tokens_per_s": unbatched,
        "raw_batched_matched_tokens_per_s": matched,
        "raw_batched_short_tokens_per_s": short,
        "one_short_request_tokens_per_s": alone,
        "vs_raw_batched": synth / matched,
        "vs_one_request": synth / unbatched,
        "vs_without_prefix_cache": synth / uncached,
        "vs_generate_calls": synth / generate_calls,
        "vs_prefilled_apart": synth / apart,
        "vs_unpacked": synth / unpacked,
        "batch": sessions,
    }


def llama_rows(out: Table, llama: dict[str, Any]) -> None:
    if "skipped" in llama:
        out.add_row("llama-server", "skipped", llama["skipped"], "", "")
        return
    out.add_row(
        f"synth vs llama-server's own throughput ({llama['slots']} slots, "
        f"{llama['problems']} MATH500 debates, greedy; raw: the same requests; median of "
        f"{len(llama['capacity_ratios'])} pairs: {llama['capacity_ratios']})",
        f"{llama['synth_tokens_per_s']:.1f} tok/s",
        f"{llama['raw_tokens_per_s']:.1f} tok/s",
        f"{llama['capacity_ratio']:.3f}",
        ">= 0.95",
    )
    if "embedded_vs_llama" in llama:
        out.add_row(
            f"embedded synth vs the same synthesis on llama-server ({llama['threads']} threads)",
            f"{llama['embedded_tokens_per_s']:.1f} tok/s",
            f"{llama['synth_tokens_per_s']:.1f} tok/s",
            f"{llama['embedded_vs_llama']:.2f}x",
            "",
        )


def table(
    server: dict[str, Any], model: dict[str, float] | None, llama: dict[str, Any] | None = None
) -> Table:
    out = Table(title="journey benchmarks", show_lines=False)
    for name in ("measure", "value", "baseline", "ratio", "target"):
        out.add_column(name)
    s = server
    slots = s["server"]
    out.add_row(
        f"synth vs server capacity ({slots['slots']} slots, {s['concurrency']} sessions)",
        f"{s['synth_tokens_per_s']:.0f} tok/s",
        f"{s['capacity_tokens_per_s']:.0f} tok/s",
        f"{s['capacity_ratio']:.3f}",
        ">= 0.95",
    )
    out.add_row(
        "  the same, 10%-80% of the run (no start-up, no tail)",
        "",
        "",
        f"{s['steady_capacity_ratio']:.3f}",
        "",
    )
    out.add_row(
        "synth vs one session at a time",
        f"{s['synth_tokens_per_s']:.0f} tok/s",
        f"{s['sequential_tokens_per_s']:.0f} tok/s",
        f"{s['speedup_vs_sequential']:.1f}x",
        ">= 20x",
    )
    out.add_row(
        "server slot utilisation (busy slot-time share)",
        f"{s['slot_utilisation']:.3f}",
        f"{s['capacity_slot_utilisation']:.3f} saturated",
        "",
        "",
    )
    out.add_row(
        "orchestration CPU per model call",
        f"{s['cpu_ms_per_call']:.2f} ms",
        f"{s['requests']} calls",
        "",
        "",
    )
    for role, reuse in sorted(s["prefix_reuse"].items()):
        out.add_row(
            f"prefix reuse, {role} (mean / median)",
            f"{reuse['mean']:.1%} / {reuse['median']:.1%}",
            f"{reuse['requests']} requests, {reuse['append_only']:.0%} append-only",
            "",
            "",
        )
    if model is not None:
        m = model
        out.add_row(
            f"embedded synth vs raw batched generate (batch {m['batch']:.0f}, "
            f"{m['synth_prompt_tokens']:.0f}-token prompts as the synthesis's, greedy)",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['raw_batched_matched_tokens_per_s']:.1f} tok/s",
            f"{m['vs_raw_batched']:.2f}",
            ">= 0.8",
        )
        out.add_row(
            "embedded synth vs the same synthesis one request at a time",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['synth_one_request_at_a_time_tokens_per_s']:.1f} tok/s",
            f"{m['vs_one_request']:.1f}x",
            ">= 3x",
        )
        out.add_row(
            "embedded synth vs the same synthesis without the prefix cache",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['synth_without_prefix_cache_tokens_per_s']:.1f} tok/s",
            f"{m['vs_without_prefix_cache']:.2f}x",
            "",
        )
        out.add_row(
            "embedded synth vs the same synthesis with one `generate` call per batch",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['synth_with_generate_calls_tokens_per_s']:.1f} tok/s",
            f"{m['vs_generate_calls']:.2f}x",
            "",
        )
        out.add_row(
            "embedded synth vs the same synthesis with joining prompts prefilled apart",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['synth_prefilled_apart_tokens_per_s']:.1f} tok/s",
            f"{m['vs_prefilled_apart']:.2f}x",
            "",
        )
        out.add_row(
            "embedded synth vs the same synthesis with plain (unpacked) linear layers",
            f"{m['synth_tokens_per_s']:.1f} tok/s",
            f"{m['synth_unpacked_tokens_per_s']:.1f} tok/s",
            f"{m['vs_unpacked']:.2f}x",
            "",
        )
        out.add_row(
            "  for scale: raw generate, short prompts, greedy (batch 8 / one request)",
            f"{m['raw_batched_short_tokens_per_s']:.1f} tok/s",
            f"{m['one_short_request_tokens_per_s']:.1f} tok/s",
            "",
            "",
        )
    if llama is not None:
        llama_rows(out, llama)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer problems (a smoke run).")
    parser.add_argument("--skip-embedded", action="store_true", help="Server benchmark only.")
    parser.add_argument("--skip-llama", action="store_true", help="No llama-server part.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    options = parser.parse_args()
    server = bench_server.run(problems=40 if options.quick else 400)
    model = None if options.skip_embedded else embedded(8, 32 if options.quick else 64)
    llama = None
    if not options.skip_llama:
        llama = bench_llama.run(
            problems=16,
            max_turns=2 if options.quick else 3,
            step_tokens=32 if options.quick else 64,
            embedded=not options.skip_embedded,
        )
    console = Console()
    console.print(table(server, model, llama))
    when = datetime.now(UTC).isoformat(timespec="minutes")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    console.print(f"{when}, {machine}")
    if options.json:
        figures = {"server": server, "embedded": model, "llama": llama}
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
