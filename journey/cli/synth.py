"""`journey synth`: one session per dataset problem, concurrently, into a resumable run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import (
    CriticModeOption,
    CriticOption,
    CriticReasksOption,
    CriticTokensOption,
    MaxDepthOption,
    MaxTokensOption,
    PolicyOption,
    StepTokensOption,
    app,
    console,
    err_console,
    resumable,
    warn,
)
from journey.cli._dataset import select_problems
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

STRATEGY_HELP = (
    "debate: the policy proposes each step, a critic judges it and picks the action; "
    "propose-critique: the policy proposes each step and checks it itself (no critic); "
    "beam: several steps sampled per node, the critic's score as reward; "
    "expand: the policy expands a reference solution into a long thought whose wrong turns "
    "are corrected, checked against the reference."
)


@app.command(
    epilog="Examples:\n\n"
    "    journey synth --dataset math500.jsonl --out runs/math500 --limit 20\n\n"
    "    journey synth --dataset math500.jsonl --out runs/math500   (again: resumes)\n\n"
    "    journey synth --dataset math500.jsonl --out runs/m500-s0 --shard 0/4 "
    "--concurrency 16 --policy openai:Qwen2.5-7B-Instruct@http://localhost:8000/v1 "
    "--policy-concurrency 4\n\n"
    "    journey synth --dataset HuggingFaceH4/MATH-500 --split test --out runs/m500-hf\n\n"
    "    journey synth --dataset math500.jsonl --out runs/m500-4o --policy "
    "'openai:gpt-4o-mini?rpm=500' --critic openai:gpt-4o-mini --budget-usd 5"
)
def synth(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="JSONL file, one problem per line (MATH-style); or, if not a file, a Hugging "
            "Face dataset: hf:NAME\\[:CONFIG]\\[@SPLIT] (NAME: Hub id or local folder) or a Hub id "
            "like HuggingFaceH4/MATH-500 (needs the 'train' extra).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run directory; an existing one is resumed.")],
    split: Annotated[
        str | None,
        typer.Option(help="Split of a Hugging Face dataset (default: test, or its only split)."),
    ] = None,
    strategy: Annotated[
        str,
        # The strategies' own summaries (`strategies_help()`; a test keeps them equal),
        # written out so that `journey --help` does not import the sessions.
        typer.Option(help=STRATEGY_HELP),
    ] = "debate",
    policy: PolicyOption = "embedded",
    critic: CriticOption = "embedded",
    critic_mode: CriticModeOption = "auto",
    concurrency: Annotated[int, typer.Option(help="Sessions running at once.")] = 8,
    policy_concurrency: Annotated[
        int | None,
        typer.Option(help="Policy requests in flight at once (default: only --concurrency)."),
    ] = None,
    critic_concurrency: Annotated[
        int | None,
        typer.Option(help="Critic requests in flight at once (default: only --concurrency)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Take at most this many problems.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many problems first.")] = 0,
    shard: Annotated[
        str | None,
        typer.Option(help="i/n: only problems whose index is i modulo n (after offset/limit)."),
    ] = None,
    problem_field: Annotated[str, typer.Option(help="Field holding the problem.")] = "problem",
    answer_field: Annotated[str, typer.Option(help="Field holding the gold answer.")] = "answer",
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad dataset line instead of skipping it.")
    ] = False,
    max_turns: Annotated[int, typer.Option(help="Policy turns before the session stops.")] = 16,
    max_depth: MaxDepthOption = 12,
    max_tokens: MaxTokensOption = 6000,
    step_tokens: StepTokensOption = 160,
    critic_tokens: CriticTokensOption = 1024,  # DEFAULT_CRITIC_TOKENS; imported only when run
    critic_reasks: CriticReasksOption = 1,
    beam_width: Annotated[
        int | None, typer.Option(help="beam: children sampled per expanded node (default 3).")
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(
            help="beam: at most this many steps judged correct kept per depth (default 2)."
        ),
    ] = None,
    beam_max_expansions: Annotated[
        int | None,
        typer.Option(help="beam: node expansions before it stops (default --max-turns)."),
    ] = None,
    beam_temperature: Annotated[
        float | None, typer.Option(help="beam: sampling temperature of the children (default 0.8).")
    ] = None,
    beam_full_tree: Annotated[
        bool,
        typer.Option(
            "--beam-full-tree",
            help="beam: grow the tree to --max-depth or until every leaf ends, instead of "
            "stopping at the first verified answer.",
        ),
    ] = False,
    beam_walk_trials: Annotated[
        int | None,
        typer.Option(
            help="beam: failed branches the long thought enters per correct step (default 2)."
        ),
    ] = None,
    policy_context: Annotated[
        str | None,
        typer.Option(
            help="debate, propose-critique: what the policy sees before a step: dialogue (the "
            "whole conversation, rejected steps too; default), path (the accepted path and "
            "the newest critique: small models copy rejected steps) or fresh (the path "
            "alone, as beam asks: a rejected step is sampled again)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Resume even if the run was made with other models or strategy.")
    ] = False,
    no_retry_errors: Annotated[
        bool,
        typer.Option(
            "--no-retry-errors",
            help="Keep the sessions that ended in model_error as they are; by default a run "
            "runs them again (their old log kept as events.error-N.jsonl).",
        ),
    ] = False,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop the run (resumable, exit status 1) when this many sessions in a row "
            "end in model_error: an endpoint down, a wrong URL, a spent quota. 0: never."
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
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
) -> None:
    """Run a debate on every problem of a dataset; run it again to resume."""
    from journey.runs import SynthesisOptions, SynthesisRunner
    from journey.sessions import SessionLimits
    from journey.view.progress import synthesis_progress
    from journey.view.reports import render_synthesis_report

    # Options first, so a wrong one fails before the dataset is read. The strategy
    # settings given go to the strategy, which refuses those it does not take.
    given = {
        "beam_width": beam_width,
        "beam_size": beam_size,
        "beam_max_expansions": beam_max_expansions,
        "beam_temperature": beam_temperature,
        "beam_full_tree": beam_full_tree or None,  # recorded only when asked
        "beam_walk_trials": beam_walk_trials,
        "policy_context": policy_context,
    }
    strategy_config = {key: value for key, value in given.items() if value is not None}
    options = SynthesisOptions(
        strategy=strategy,
        policy=policy,
        critic=critic,
        critic_mode=critic_mode,
        concurrency=concurrency,
        policy_concurrency=policy_concurrency,
        critic_concurrency=critic_concurrency,
        limits=SessionLimits(max_turns=max_turns, max_depth=max_depth, max_tokens=max_tokens),
        step_tokens=step_tokens,
        critic_tokens=critic_tokens,
        critic_reasks=critic_reasks,
        strategy_config=strategy_config,
        spending=spend_settings(
            cache=cache,
            cache_mode=cache_mode,
            prices=prices,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
        ),
    )
    options.models  # noqa: B018  (validates the model specs now)
    on_ray = ray_options(
        ray=ray,
        ray_workers=ray_workers,
        ray_units=ray_units,
        ray_worker_cpus=ray_worker_cpus,
        ray_worker_gpus=ray_worker_gpus,
    )
    selection = select_problems(
        dataset,
        split=split,
        problem_field=problem_field,
        answer_field=answer_field,
        strict=strict,
        offset=offset,
        limit=limit,
        shard=shard,
    )
    if selection is None:
        return
    problems, source = selection.problems, selection.source
    settings = {
        "force": force,
        "retry_errors": not no_retry_errors,
        "max_consecutive_errors": max_consecutive_errors,
    }
    progress = synthesis_progress(err_console, enabled=not no_progress)
    with resumable(out):
        if on_ray is not None:
            from journey.runs.ray_synthesis import run_on_ray

            report = run_on_ray(
                options,
                problems,
                out,
                on_ray,
                dataset=source,
                dataset_issues=selection.issues,
                progress=progress,
                runner_settings=settings,
            )
        else:
            runner = SynthesisRunner(
                options,
                progress=progress,
                force=force,
                retry_errors=not no_retry_errors,
                max_consecutive_errors=max_consecutive_errors,
            )
            report = asyncio.run(
                runner.run(out, problems, dataset=source, dataset_issues=selection.issues)
            )
    if json_output:
        print(report.model_dump_json(indent=2))
        return
    console.print(render_synthesis_report(report))
    for line in report.problems:
        warn("note", line, sep=" ")
    if report.stopped:
        warn("stopped", report.stopped)
