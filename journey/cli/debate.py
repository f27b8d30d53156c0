"""`journey debate`: one policy/critic debate, shown live."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

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
    default_run_dir,
    warn,
)
from journey.errors import JourneyError

DEMO_PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep does the farmer have?"
DEMO_ANSWER = "12"
DEMO_MAX_TURNS = 8


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
    critic_mode: CriticModeOption = "auto",
    calibrate: Annotated[
        bool, typer.Option(help="Score mode: calibrate label scores on a content-free step.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Run directory to write (default: runs/debate-TIME).")
    ] = None,
    max_turns: Annotated[
        int | None,
        typer.Option(help="Policy turns before the session stops \\[default: 16; 8 with --demo]."),
    ] = None,
    max_depth: MaxDepthOption = 12,
    max_tokens: MaxTokensOption = 6000,
    step_tokens: StepTokensOption = 160,
    critic_tokens: CriticTokensOption = 1024,  # DEFAULT_CRITIC_TOKENS; imported only when run
    critic_reasks: CriticReasksOption = 1,
    raw: Annotated[bool, typer.Option(help="Also show the models' raw replies.")] = False,
    quiet: Annotated[bool, typer.Option(help="Print only the summary.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the session summary as JSON.")
    ] = False,
) -> None:
    """Run one policy/critic debate on a problem and show it live."""
    from dataclasses import replace

    from journey.agents import CriticAgent, PolicyAgent, RolloutJudge, parse_rollout_spec
    from journey.agents.backends import ClientPool, ensure_loaded, parse_model_spec
    from journey.problems import session_id_for
    from journey.protocols import SessionEnded
    from journey.runs import RunDirectory
    from journey.sessions import DebateSession, SessionLimits, SessionResult
    from journey.view.render import SessionRenderer, render_session_summary, render_tree

    if demo:
        problem, answer = problem or DEMO_PROBLEM, answer or DEMO_ANSWER
    if not problem:
        raise JourneyError("give a PROBLEM, or --demo for a built-in one")
    if max_turns is None:
        # The demo should finish in a couple of minutes on a laptop CPU.
        max_turns = DEMO_MAX_TURNS if demo else SessionLimits.max_turns
    limits = SessionLimits(max_turns=max_turns, max_depth=max_depth, max_tokens=max_tokens)
    rollout = parse_rollout_spec(critic)
    specs = {
        "policy": parse_model_spec(policy),
        "critic": parse_model_spec(critic if rollout is None else rollout.model),
    }
    models = {role: str(s) for role, s in specs.items()}
    if rollout is not None:
        models["critic"] = str(replace(rollout, model=models["critic"]))
    if out is not None:  # two debates of one problem would share one event log
        folder = out / "sessions" / session_id_for(problem)
        if (folder / "events.jsonl").exists():
            raise JourneyError(
                f"{out} already holds a debate of this problem ({folder}); give another --out"
            )
    run = RunDirectory(
        out or default_run_dir("debate"),
        meta={"command": "debate", "models": models},
    )
    show = not (quiet or json_output)
    renderer = SessionRenderer(console, show_raw=raw)

    async def main() -> None:
        pool = ClientPool()
        try:
            with console.status("Loading models…", spinner="dots") if show else nullcontext():
                clients = {role: pool.get(spec) for role, spec in specs.items()}
                for client in clients.values():
                    await ensure_loaded(client)
            session = DebateSession(
                problem,
                gold_answer=answer,
                policy=PolicyAgent(
                    clients["policy"], max_tokens=specs["policy"].reply_tokens(step_tokens)
                ),
                critic=(
                    RolloutJudge(clients["critic"], rollout.settings)
                    if rollout is not None
                    else CriticAgent(
                        clients["critic"],
                        mode=critic_mode,
                        calibrate=calibrate,
                        max_tokens=specs["critic"].reply_tokens(critic_tokens),
                        max_reasks=critic_reasks,
                    )
                ),
                limits=limits,
                models=models,
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
                            SessionResult(session.session_id, session.tree, session.events)
                        )
            if json_output:
                print(summary.model_dump_json(indent=2))
                return
            if quiet:
                console.print(render_session_summary(result.ended))
            console.print(render_tree(result.tree, final_node_id=result.ended.final_node_id))
            folder = run.session_dir(result.session_id)
            console.print(
                Text.assemble(
                    ("Saved to ", "dim"),
                    str(folder),
                    ("  (events.jsonl, tree.json, transcript.md)", "dim"),
                ),
                soft_wrap=True,
            )
        finally:
            await pool.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        warn("interrupted", f"the session log so far is in {run.root}")
        raise typer.Exit(130) from None
