"""`journey pairs`: DPO pairs from a model's own graded samples (resumable), with a card."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from journey.cli._app import app, console, err_console, resumable, warn
from journey.cli._options import (
    CACHE_MODE_DEFAULT,
    RAY_WORKER_CPUS_DEFAULT,
    RAY_WORKER_GPUS_DEFAULT,
    RAY_WORKERS_DEFAULT,
    BudgetTokensOption,
    BudgetUsdOption,
    CacheModeOption,
    CacheOption,
    PricesOption,
    RayOption,
    RayUnitsOption,
    RayWorkerCpusOption,
    RayWorkerGpusOption,
    RayWorkersOption,
    ray_options,
    spend_settings,
)


@app.command(
    epilog="Examples:\n\n"
    "    journey pairs --model hf:models/journey --dataset train.jsonl --out data/pairs.jsonl\n\n"
    "    journey pairs --dataset math500.jsonl --out data/pairs.jsonl --limit 50 "
    "--samples 8 --pairs-per-problem 2\n\n"
    "    journey pairs --model openai:Qwen2.5-7B@http://localhost:8000/v1 "
    "--dataset train.jsonl --out data/pairs.jsonl --batch-size 64 --budget-tokens 2000000\n\n"
    "    journey pairs --model hf:models/journey --dataset train.jsonl "
    "--out /shared/pairs.jsonl --ray auto --ray-workers 8   (units in /shared/pairs.units/)"
)
def pairs(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="JSONL file with problem/answer lines (MATH-style).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="JSONL file of pairs; beside it FILE.samples.jsonl (an existing one resumes), "
            "FILE.sampling.json and FILE.card.json.",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Model spec (see 'journey models'): embedded, hf:DIR (a trained output)...",
        ),
    ] = "embedded",
    samples: Annotated[int, typer.Option(help="Answers sampled per problem.")] = 20,
    pairs_per_problem: Annotated[
        int, typer.Option(help="Most pairs per problem: min(#correct, #wrong, this).")
    ] = 5,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus-sampling mass.")] = 0.95,
    max_new_tokens: Annotated[int, typer.Option(help="Generation limit per answer.")] = 512,
    seed: Annotated[int, typer.Option(help="Seeds the samples and the draw of pairs.")] = 0,
    batch_size: Annotated[
        int,
        typer.Option(help="Requests sent to the model at once (a local model's batch)."),
    ] = 8,
    limit: Annotated[int | None, typer.Option(help="Take at most this many problems.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many problems first.")] = 0,
    problem_field: Annotated[str, typer.Option(help="Field holding the problem.")] = "problem",
    answer_field: Annotated[str, typer.Option(help="Field holding the gold answer.")] = "answer",
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad dataset line instead of skipping it.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Resume samples that were made with other settings.")
    ] = False,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop (resumable, exit status 1) when this many problems in a row have a "
            "request fail: an endpoint down, a wrong URL, a spent quota. 0: never."
        ),
    ] = 20,  # DEFAULT_MAX_CONSECUTIVE_ERRORS; the work is imported only when run
    cache: CacheOption = None,
    cache_mode: CacheModeOption = CACHE_MODE_DEFAULT,
    budget_tokens: BudgetTokensOption = None,
    budget_usd: BudgetUsdOption = None,
    prices: PricesOption = None,
    ray: RayOption = None,
    ray_workers: RayWorkersOption = RAY_WORKERS_DEFAULT,
    ray_units: RayUnitsOption = None,
    ray_worker_cpus: RayWorkerCpusOption = RAY_WORKER_CPUS_DEFAULT,
    ray_worker_gpus: RayWorkerGpusOption = RAY_WORKER_GPUS_DEFAULT,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the dataset card as JSON instead of a table.")
    ] = False,
) -> None:
    """Sample answers per problem, grade them, and pair correct with wrong ones for DPO."""
    from journey.evaluation.grading import grade_output
    from journey.evaluation.pairs import PairsOptions
    from journey.evaluation.pairs_sampling import PairsSampler
    from journey.exports.export import card_path
    from journey.problems.dataset import issue_lines, load_problems
    from journey.runs.run_cost import spend_rows
    from journey.view.progress import pairs_progress

    options = PairsOptions(
        model=model,
        samples=samples,
        pairs_per_problem=pairs_per_problem,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        spending=spend_settings(
            cache=cache,
            cache_mode=cache_mode,
            prices=prices,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
        ),
    )
    on_ray = ray_options(
        ray=ray,
        ray_workers=ray_workers,
        ray_units=ray_units,
        ray_worker_cpus=ray_worker_cpus,
        ray_worker_gpus=ray_worker_gpus,
    )
    data = load_problems(
        dataset, problem_field=problem_field, answer_field=answer_field, strict=strict
    )
    for line in issue_lines(data.issues):
        warn("skipped", line, sep=" ")
    problems = data.select(offset=offset, limit=limit)
    progress = pairs_progress(err_console, enabled=not no_progress)
    with resumable(out):
        if on_ray is not None:
            from journey.evaluation.ray_pairs import sample_pairs_on_ray

            card = sample_pairs_on_ray(
                options,
                problems,
                out,
                on_ray,
                dataset=str(dataset),
                grade=grade_output,
                force=force,
                max_consecutive_errors=max_consecutive_errors,
                progress=progress,
            )
        else:
            sampler = PairsSampler(
                options,
                grade=grade_output,
                progress=progress,
                force=force,
                max_consecutive_errors=max_consecutive_errors,
            )
            card = asyncio.run(sampler.run(out, problems, dataset=str(dataset)))
    if json_output:
        print(card.model_dump_json(indent=2))
    else:
        table = Table(title="Pairs", box=box.ROUNDED, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("file", f"{card.file} ({card.rows} rows)")
        table.add_row("card", str(card_path(out)))
        table.add_row("samples", card.samples_file)
        table.add_row("problems", f"{card.sessions_exported}/{card.sessions_seen} gave pairs")
        for reason, count in card.skipped.items():
            table.add_row("no pair", f"{count} {reason}")
        accuracy = f"{card.correct_samples / card.samples:.1%}" if card.samples else "-"
        table.add_row(
            "answers",
            f"{card.samples} sampled, {accuracy} correct, "
            f"{card.unanswered_samples} without an answer, {card.truncated_samples} cut off",
        )
        if card.failed_requests:
            table.add_row("failed", f"{card.failed_requests} requests (problems retried next run)")
        for name, value in spend_rows(card):
            table.add_row(name, Text(value))  # paths and model names: never markup
        console.print(table)
    if card.failed_requests:
        warn(
            f"{card.failed_requests} requests failed",
            "run the same command again to retry their problems",
        )
    if card.stopped:
        warn("stopped", card.stopped)
    if not card.rows:
        warn("no pairs written", "see the reasons above")
