"""`journey eval critic` (a critic judges step-labelled solutions; resumable) and
`journey eval critic compare`.

A sub-group of `journey eval`, beside `journey eval compare`: `eval`'s own options stay
on its callback, so every `journey eval --dataset ...` line works as before.
"""

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
    console,
    err_console,
    resumable,
    warn,
)
from journey.cli.evaluate import eval_app
from journey.errors import ConfigError

critic_app = typer.Typer(
    help="Judge a critic on step-labelled solutions, as it judges steps in a debate: "
    "ProcessBench's F1, step precision and recall, unreadable verdicts.\n\n"
    "Examples:\n\n"
    "    journey eval critic --critic embedded --dataset mr-gsm8k-steps.jsonl "
    "--out evals/critic-embedded --sample 50\n\n"
    "    journey eval critic --critic openai:gpt-4o-mini --dataset processbench-gsm8k.jsonl "
    "--field-map processbench --out evals/critic-4o-mini\n\n"
    "    journey eval critic compare evals/critic-embedded evals/critic-4o-mini",
    invoke_without_command=True,
    rich_markup_mode="rich",
)
eval_app.add_typer(critic_app, name="critic")


@critic_app.callback()
def evaluate_critic(
    ctx: typer.Context,
    critic: CriticOption = "embedded",
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="JSONL file of step-labelled solutions (MR-GSM8K's fields by default), or a "
            "Hugging Face dataset: hf:NAME[:CONFIG]\\[@SPLIT] or OWNER/NAME.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Evaluation directory; an existing one resumes.")
    ] = None,
    field_map: Annotated[
        list[str] | None,
        typer.Option(
            "--field-map",
            help="A layout (mr-gsm8k, processbench, prm800k) or KEY=PATH (problem, steps, "
            "first_error, first_error_base, ratings, answer, type, id; dotted paths, * maps a "
            "list); repeat, applied in order.",
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split of a Hugging Face dataset (default: test).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Take at most this many solutions.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many solutions first.")] = 0,
    sample: Annotated[
        int | None,
        typer.Option(
            help="Judge this many solutions drawn at random (after --offset/--limit); the "
            "same for the same --seed. MR-GSM8K's file lists its wrong solutions first."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Solutions judged at once.")] = 8,
    critic_mode: CriticModeOption = "auto",
    critic_tokens: CriticTokensOption = 1024,  # DEFAULT_CRITIC_TOKENS; imported only when run
    critic_reasks: CriticReasksOption = 1,
    calibrate: Annotated[
        bool, typer.Option(help="Score mode: calibrate label scores on a content-free step.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad dataset line instead of skipping it.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Resume even if the directory was made with another critic.")
    ] = False,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop (resumable, exit status 1) when this many solutions in a row fail: the "
            "endpoint down, a wrong URL, a spent quota. 0: never."
        ),
    ] = 20,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON instead of tables.")
    ] = False,
) -> None:
    """Judge each solution step by step until the critic's first rejection; write records
    and metrics."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None or out is None:
        raise ConfigError("journey eval critic needs --dataset FILE and --out DIR (see --help)")
    from journey.evaluation.critic_eval import CriticEvalOptions, CriticEvalRunner
    from journey.problems.dataset import issue_lines
    from journey.problems.step_labels import load_labelled_solutions
    from journey.problems.step_layouts import parse_field_map
    from journey.view.critic_report import render_critic_metrics
    from journey.view.progress import evaluation_progress

    layout = parse_field_map(field_map or [])
    options = CriticEvalOptions(
        critic=critic,
        critic_mode=critic_mode,
        critic_tokens=critic_tokens,
        critic_reasks=critic_reasks,
        calibrate=calibrate,
        concurrency=concurrency,
        layout=layout,
    )
    data = load_labelled_solutions(dataset, layout, strict=strict, split=split)
    if data.issues:
        warn("skipped", f"{len(data.issues)} bad lines of {data.source}")
        for line in issue_lines(data.issues):
            warn("skipped", line, sep=" ")
    solutions = data.select(offset=offset, limit=limit, sample=sample, seed=seed)
    runner = CriticEvalRunner(
        options,
        progress=evaluation_progress(err_console, enabled=not no_progress),
        force=force,
        max_consecutive_errors=max_consecutive_errors,
    )
    with resumable(out):
        metrics = asyncio.run(runner.run(out, solutions, dataset=data.source))
    if json_output:
        print(metrics.model_dump_json(indent=2))
        return
    console.print(render_critic_metrics(metrics))
    console.print(f"records and metrics in {out}", highlight=False, soft_wrap=True)


@critic_app.command(
    "compare",
    epilog="Example:\n\n    journey eval critic compare evals/critic-a evals/critic-b",
)
def compare_critics(
    directories: Annotated[
        list[Path], typer.Argument(help="Critic evaluation directories, side by side.")
    ],
    shared: Annotated[
        bool, typer.Option("--shared", help="Only the solutions every evaluation judged.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the comparison as JSON instead of a table.")
    ] = False,
) -> None:
    """Critic evaluations side by side: F1, accuracies, step precision and recall, with 95% CIs."""
    from journey.evaluation.critic_compare import compare_critic_runs
    from journey.view.critic_report import render_critic_comparison

    comparison = compare_critic_runs(directories, shared_only=shared)
    if json_output:
        print(comparison.model_dump_json(indent=2))
        return
    console.print(render_critic_comparison(comparison))
