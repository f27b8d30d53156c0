"""`journey expand`: reference solutions expanded into checked long thoughts, as a run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from journey.cli._app import app, console, err_console, resumable, warn
from journey.cli._dataset import select_problems
from journey.cli._options import field_default, field_option
from journey.protocols.expansion import ExpansionChecks

Checks = ExpansionChecks


@app.command(
    epilog="Examples:\n\n"
    "    journey expand --dataset math500.jsonl --model openai:gpt-4o --out runs/expand-m500\n\n"
    "    journey expand --dataset gsm8k.jsonl --problem-field question --answer-field answer "
    "--solution-field answer --out runs/expand-gsm8k --limit 100\n\n"
    "    journey expand --dataset math500.jsonl --out runs/expand-m500   (again: resumes)"
)
def expand(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="JSONL file with a reference solution per problem (MATH's solution, GSM8K's "
            "answer), or a Hugging Face dataset (hf:NAME\\[:CONFIG]\\[@SPLIT] or a Hub id).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run directory; an existing one is resumed.")],
    model: Annotated[
        str, typer.Option("--model", help="Model spec of the expander (see 'journey models').")
    ] = "embedded",
    solution_field: Annotated[
        str, typer.Option(help="Field holding the reference solution (GSM8K: answer).")
    ] = "solution",
    problem_field: Annotated[str, typer.Option(help="Field holding the problem.")] = "problem",
    answer_field: Annotated[str, typer.Option(help="Field holding the gold answer.")] = "answer",
    split: Annotated[
        str | None,
        typer.Option(help="Split of a Hugging Face dataset (default: test, or its only split)."),
    ] = None,
    prompt: Annotated[
        Path | None,
        typer.Option(
            help="Prompt file replacing the packaged expand.yaml (same keys: system, expand, "
            "retry; an example is optional)."
        ),
    ] = None,
    attempts: Annotated[int, typer.Option(help="Expansions tried per problem.")] = 3,
    expansion_tokens: Annotated[
        int, typer.Option(help="Generation limit for one expansion (max_tokens in --model wins).")
    ] = 4096,
    min_reflections: Annotated[int, field_option(Checks, "min_reflections")] = field_default(
        Checks, "min_reflections"
    ),
    key_share: Annotated[float, field_option(Checks, "key_share")] = field_default(
        Checks, "key_share"
    ),
    min_length: Annotated[float, field_option(Checks, "min_length")] = field_default(
        Checks, "min_length"
    ),
    max_length: Annotated[float, field_option(Checks, "max_length")] = field_default(
        Checks, "max_length"
    ),
    limit: Annotated[int | None, typer.Option(help="Take at most this many problems.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many problems first.")] = 0,
    shard: Annotated[
        str | None,
        typer.Option(help="i/n: only problems whose index is i modulo n (after offset/limit)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Problems expanded at once.")] = 8,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad dataset line instead of skipping it.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Resume even if the run was made with another model.")
    ] = False,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop the run (resumable, exit status 1) when this many sessions in a row "
            "end in model_error: an endpoint down, a wrong URL, a spent quota. 0: never."
        ),
    ] = 20,  # DEFAULT_MAX_CONSECUTIVE_ERRORS; the work is imported only when run
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
) -> None:
    """Expand each problem's reference solution into a long thought with corrected wrong turns.

    The model writes numbered steps that follow the reference, takes plausible wrong
    turns, names each wrong step in a reflection and writes it again. An expansion is
    kept only when its final answer verifies, every reflection is followed by its step
    rewritten, the reference's key numbers appear and its length is within bounds; a
    rejected one is tried again and counted by reason. The run is a normal run
    (strategy expand): export, replay, browse and stats take it. Run it again to resume.
    """
    from journey.runs.expansion import ExpandOptions, run_expand
    from journey.view.expansion_report import render_expansion_report
    from journey.view.progress import synthesis_progress

    options = ExpandOptions(
        model=model,
        solution_field=solution_field,
        answer_field=answer_field,
        prompt=prompt,
        attempts=attempts,
        expansion_tokens=expansion_tokens,
        checks=ExpansionChecks(
            min_reflections=min_reflections,
            key_share=key_share,
            min_length=min_length,
            max_length=max_length,
        ),
        concurrency=concurrency,
    )
    options.synthesis()  # a bad spec, setting or prompt file fails before the dataset is read
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
    with resumable(out):
        report = asyncio.run(
            run_expand(
                options,
                out,
                problems,
                dataset=source,
                dataset_issues=selection.issues,
                progress=synthesis_progress(err_console, enabled=not no_progress),
                force=force,
                max_consecutive_errors=max_consecutive_errors,
            )
        )
    if json_output:
        print(report.model_dump_json(indent=2))
        return
    console.print(render_expansion_report(report))
    for line in report.synthesis.problems:
        warn("note", line, sep=" ")
