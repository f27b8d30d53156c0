"""`journey replay`: list a run's sessions, or replay one as it was shown live."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from journey.cli._app import app, console
from journey.protocols import ActionName, Role


@app.command(
    epilog="Examples:\n\n"
    "    journey replay runs/debate-20261124-151203            # list its sessions\n\n"
    "    journey replay runs/debate-20261124-151203 1 --speed 4\n\n"
    "    journey replay RUN 3f2a --role critic --action backtrack --no-delay\n\n"
    "    journey replay RUN 2 --turns 3-7 --tree --transcript"
)
def replay(
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    session: Annotated[
        str | None,
        typer.Argument(
            help="Session to replay: its id, a unique id prefix, or its row number in the "
            "listing. Without it, list the run's sessions."
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Replay this many times faster than recorded.")
    ] = 1.0,
    no_delay: Annotated[bool, typer.Option("--no-delay", help="Show everything at once.")] = False,
    step: Annotated[
        bool,
        typer.Option(
            "--step", help="Press Enter for each next event (goes straight on without a terminal)."
        ),
    ] = False,
    role: Annotated[
        Role | None, typer.Option(help="Show only this role's events (and the start and end).")
    ] = None,
    action: Annotated[
        list[ActionName] | None,
        typer.Option(
            help="Show only critic verdicts and applied actions with this action, and the steps "
            "they judged. Repeatable."
        ),
    ] = None,
    turns: Annotated[
        str | None, typer.Option(help="Show only these turns: 3-7, 3 or 3- (from 3 on).")
    ] = None,
    tree: Annotated[bool, typer.Option("--tree", help="Draw the reasoning tree at the end.")] = (
        False
    ),
    transcript: Annotated[
        bool, typer.Option("--transcript", help="Print the long thought at the end.")
    ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Also show the models' raw replies.")] = False,
) -> None:
    """Replay a recorded session as it was shown live, or list a run's sessions.

    Pacing follows the recorded time between events, each wait capped at 3 s (before --speed).
    """
    from journey.runs.stats import read_run, session_overviews
    from journey.view.render import render_session_list
    from journey.view.replay import (
        EventFilter,
        ReplayOptions,
        parse_turn_range,
        replay_session,
        resolve_session,
    )

    contents = read_run(run)
    rows = session_overviews(contents)
    if session is None:
        if not rows:
            console.print(Text.assemble(("No sessions in ", "dim"), str(run)), soft_wrap=True)
            return
        console.print(render_session_list(rows))
        console.print(
            Text.assemble(("Replay one: ", "dim"), f"journey replay {run} 1"), soft_wrap=True
        )
        return
    where = EventFilter(
        role=role,
        actions=frozenset(action or ()),
        turns=parse_turn_range(turns) if turns is not None else None,
    )
    options = ReplayOptions(
        where=where,
        speed=speed,
        instant=no_delay or step,
        show_raw=raw,
        tree=tree,
        transcript=transcript,
    )
    pause = None
    if step and sys.stdin.isatty():
        console.print(Text("--step: press Enter for the next event", style="dim"))
        pause = _wait_for_enter
    chosen = resolve_session(rows, session)
    replay_session(contents, chosen.session_id, console, options, pause=pause)


def _wait_for_enter() -> None:
    sys.stdin.readline()
