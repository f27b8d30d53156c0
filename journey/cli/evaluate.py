"""`journey eval` (generate, grade, metrics; resumable) and `journey eval compare`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

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
from journey.errors import ConfigError

eval_app = typer.Typer(
    help="Evaluate a model on MATH-style problems, or compare evaluations.\n\n"
    "Examples:\n\n"
    "    journey eval --dataset math500.jsonl --out evals/base --limit 50\n\n"
    "    journey eval --model hf:runs/sft-journey --dataset math500.jsonl --out evals/journey\n\n"
    "    journey eval --model 'openai:gpt-4o-mini' --dataset math500.jsonl --out evals/4o "
    "--budget-usd 2\n\n"
    "    journey eval --model hf:runs/sft --dataset math500.jsonl --out /shared/evals/sft "
    "--ray auto --ray-workers 8\n\n"
    "    journey eval compare evals/base evals/journey",
    invoke_without_command=True,
    rich_markup_mode="rich",
)
app.add_typer(eval_app, name="eval")


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="JSONL file with problem/answer lines (MATH-style), or a Hugging Face "
            "dataset: hf:NAME[:CONFIG]\\[@SPLIT] or OWNER/NAME.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Split of a Hugging Face dataset (default: test, or its only split)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Evaluation directory; an existing one resumes.")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Model spec (see 'journey models'): embedded, hf:DIR (a trained output)...",
        ),
    ] = "embedded",
    limit: Annotated[int | None, typer.Option(help="Take at most this many problems.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many problems first.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Requests sent to the model at once.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Generation limit per answer.")] = 512,
    temperature: Annotated[float, typer.Option(help="0 decodes greedily.")] = 0.0,
    reflection_keyword: Annotated[
        list[str] | None,
        typer.Option(help="Counted as reflection (repeat; replaces the defaults)."),
    ] = None,
    backtrack_phrase: Annotated[
        list[str] | None,
        typer.Option(help="Counted as backtracking (repeat; replaces the defaults)."),
    ] = None,
    problem_field: Annotated[str, typer.Option(help="Field holding the problem.")] = "problem",
    answer_field: Annotated[str, typer.Option(help="Field holding the gold answer.")] = "answer",
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad dataset line instead of skipping it.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Resume even if the directory was made with other settings.")
    ] = False,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop (resumable, exit status 1) when this many problems in a row fail: the "
            "endpoint down, a wrong URL, a spent quota. 0: never."
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
        bool, typer.Option("--json", help="Print the metrics as JSON instead of tables.")
    ] = False,
) -> None:
    """Generate an answer per problem, grade it with math-verify, write records and metrics."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None or out is None:
        raise ConfigError("journey eval needs --dataset FILE and --out DIR (see --help)")
    from journey.evaluation import EvalOptions, EvalRunner
    from journey.evaluation.metrics import DEFAULT_BACKTRACK_PHRASES, DEFAULT_REFLECTION_KEYWORDS
    from journey.problems.dataset import issue_lines, load_problems
    from journey.training.trained_on import overlap_lines
    from journey.view.progress import evaluation_progress
    from journey.view.reports import render_metrics

    options = EvalOptions(
        model=model,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        temperature=temperature,
        reflection_keywords=tuple(reflection_keyword or DEFAULT_REFLECTION_KEYWORDS),
        backtrack_phrases=tuple(backtrack_phrase or DEFAULT_BACKTRACK_PHRASES),
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
        dataset, problem_field=problem_field, answer_field=answer_field, strict=strict, split=split
    )
    for line in issue_lines(data.issues):
        warn("skipped", line, sep=" ")
    problems = data.select(offset=offset, limit=limit)
    for line in overlap_lines(model, [record.problem for record in problems]):
        warn("overlap", line)
    progress = evaluation_progress(err_console, enabled=not no_progress)
    source = str(data.source or dataset)
    with resumable(out):
        if on_ray is not None:
            from journey.evaluation.ray_eval import evaluate_on_ray

            metrics = evaluate_on_ray(
                options,
                problems,
                out,
                on_ray,
                dataset=source,
                force=force,
                max_consecutive_errors=max_consecutive_errors,
                progress=progress,
            )
        else:
            runner = EvalRunner(
                options,
                progress=progress,
                force=force,
                max_consecutive_errors=max_consecutive_errors,
            )
            metrics = asyncio.run(runner.run(out, problems, dataset=source))
    if json_output:
        print(metrics.model_dump_json(indent=2))
        return
    console.print(render_metrics(metrics))  # its cost, cache and stop rows included
    console.print(f"records and metrics in {out}", highlight=False, soft_wrap=True)
    if metrics.stopped:
        warn("stopped", metrics.stopped)


@eval_app.command(
    "compare",
    epilog="Examples:\n\n    journey eval compare evals/base evals/sft\n\n"
    "    journey eval compare evals/base evals/sft --plot evals/by-level.png",
)
def compare(
    directories: Annotated[
        list[Path], typer.Argument(help="Evaluation directories; the first is the baseline.")
    ],
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON instead of a table.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also save a bar chart of accuracy by level to this .png/.svg/.pdf "
            "(95% Wilson error bars; needs the 'plot' extra).",
        ),
    ] = None,
) -> None:
    """Accuracy of evaluations side by side, with differences vs the first and a 95% CI."""
    from journey.evaluation import compare_runs
    from journey.view.reports import render_comparison

    if resamples < 100:
        raise ConfigError(f"resamples must be at least 100, got {resamples!r}")
    comparison = compare_runs(directories, resamples=resamples, seed=seed)
    if plot is not None:
        from journey.evaluation.plot import plot_comparison

        plot_comparison(comparison, plot)
    if json_output:
        print(comparison.model_dump_json(indent=2))
    else:
        console.print(render_comparison(comparison))
    if plot is not None:  # on stderr, so that --json output stays one JSON document
        err_console.print(f"plot saved to {plot}", highlight=False, soft_wrap=True)
