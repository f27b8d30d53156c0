"""Replaying a recorded session: which events to show, when, and what comes after.

The events go through the same `SessionRenderer` as the live `journey debate`, so a
replay looks like the session did. Pacing follows the events' recorded `time`: each
event waits for the gap since the previous *shown* event, divided by the speed. A single
gap is capped at `MAX_GAP` seconds first, so a slow model (a minute per step) still
replays at a watchable pace. The console, the sleep function and the step-mode pause
are injected, so tests replay instantly into a `StringIO`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.text import Text

from journey.errors import ConfigError
from journey.longthought.writer import write_long_thought
from journey.protocols import (
    ActionApplied,
    ActionName,
    CriticVerdictGiven,
    PolicyStepProposed,
    ProblemPosed,
    Role,
    SessionEnded,
    SessionEvent,
    VerifierChecked,
)
from journey.runs.rundir import EventLog, read_event_log
from journey.runs.stats import ListedSession, RunContents
from journey.sessions.state import SessionState
from journey.sessions.tree import ReasoningTree
from journey.view.render import SessionRenderer, render_tree

__all__ = [
    "MAX_GAP",
    "OPEN_END",
    "EventFilter",
    "ReplayOptions",
    "event_role",
    "pacing_delays",
    "parse_turn_range",
    "replay_session",
    "resolve_session",
    "select_events",
    "tree_from_events",
]

MAX_GAP = 3.0
"""Seconds: the longest a single recorded gap between two events is replayed (before --speed)."""
OPEN_END = 10**9
"""The last turn of an open range like ``3-``."""


# -- choosing the events --------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events a replay shows. `ProblemPosed` and `SessionEnded` always show."""

    role: Role | None = None
    """Only this role's events: its steps, verdicts or checks, and the actions it applied."""
    actions: frozenset[ActionName] = frozenset()
    """Only critic verdicts and applied actions with these actions, the policy steps they
    were decided on, and the verifier's checks of those steps. Empty: all."""
    turns: tuple[int, int] | None = None
    """Only events of turns in this range, both ends included."""

    @property
    def active(self) -> bool:
        return self.role is not None or bool(self.actions) or self.turns is not None

    def describe(self) -> str:
        """The filter in the words of the command line, e.g. ``--role critic --turns 2-4``."""
        parts = []
        if self.role is not None:
            parts.append(f"--role {self.role.value}")
        parts += [f"--action {a.value}" for a in sorted(self.actions)]
        if self.turns is not None:
            low, high = self.turns
            parts.append(f"--turns {low}-{'' if high >= OPEN_END else high}")
        return " ".join(parts)


def parse_turn_range(text: str) -> tuple[int, int]:
    """Read ``3-7``, ``3`` (that turn alone) or ``3-`` (from turn 3 on).

    Raises:
        ConfigError: The range is not of those forms, or ends before it starts.
    """
    start, dash, end = text.strip().partition("-")
    try:
        low = int(start)
        high = int(end) if end.strip() else (OPEN_END if dash else low)
    except ValueError:
        raise ConfigError(f"--turns takes a range like 3-7, 3 or 3-; got {text!r}") from None
    if low < 0 or high < low:
        raise ConfigError(f"--turns range {text!r} is empty: it must run from low to high")
    return low, high


def event_role(event: SessionEvent) -> Role | None:
    """The role an event belongs to; None for the session's first and last events."""
    if isinstance(event, PolicyStepProposed):
        return Role.POLICY
    if isinstance(event, CriticVerdictGiven):
        return Role.CRITIC
    if isinstance(event, VerifierChecked):
        return Role.VERIFIER
    if isinstance(event, ActionApplied):
        return event.source
    return None


def select_events(events: Iterable[SessionEvent], where: EventFilter) -> list[SessionEvent]:
    """The events a replay shows, in log order.

    Args:
        events: A session's events.
        where: The filter; filters combine (an event must pass all of them).
    """
    events = list(events)
    nodes: set[int] = set()
    if where.actions:
        names = {a.value for a in where.actions}
        nodes = {
            e.node_id
            for e in events
            if isinstance(e, CriticVerdictGiven | ActionApplied) and e.action.action in names
        }

    def shown(event: SessionEvent) -> bool:
        if isinstance(event, ProblemPosed | SessionEnded):
            return True
        if where.role is not None and event_role(event) is not where.role:
            return False
        if where.turns is not None and not where.turns[0] <= event.turn <= where.turns[1]:
            return False
        if where.actions:
            if isinstance(event, CriticVerdictGiven | ActionApplied):
                return event.action.action in {a.value for a in where.actions}
            return (
                isinstance(event, PolicyStepProposed | VerifierChecked) and event.node_id in nodes
            )
        return True

    return [e for e in events if shown(e)]


# -- pacing ---------------------------------------------------------------------------------


def pacing_delays(
    times: Sequence[float], *, speed: float = 1.0, cap: float = MAX_GAP, instant: bool = False
) -> list[float]:
    """Seconds to wait before each event: the recorded gap, capped, divided by the speed.

    Args:
        times: The shown events' recorded times (seconds since the session started).
        speed: 4 replays four times faster.
        cap: The longest single gap, in recorded seconds (applied before the speed).
        instant: No waiting at all.

    Returns:
        One delay per time; the first is always 0.

    Raises:
        ConfigError: `speed` is not positive.
    """
    if speed <= 0:
        raise ConfigError(f"--speed must be above 0, got {speed!r}")
    if instant:
        return [0.0] * len(times)
    if not times:
        return []
    gaps = [b - a for a, b in pairwise(times)]
    return [0.0, *(min(max(gap, 0.0), cap) / speed for gap in gaps)]


# -- finding the session --------------------------------------------------------------------


def resolve_session(sessions: Sequence[ListedSession], key: str) -> ListedSession:
    """Find a session by full id, by 1-based row number in the listing, or by id prefix.

    A key made of digits that is a row number (1..len) is read as one; to name a session
    whose id starts with such digits, give a longer prefix or the full id.

    Raises:
        ConfigError: No session matches, or the prefix matches several.
    """
    key = key.strip()
    for row in sessions:
        if row.session_id == key:
            return row
    if key.isdigit() and 1 <= int(key) <= len(sessions):
        return sessions[int(key) - 1]
    matches = [row for row in sessions if key and row.session_id.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(
            f"no session {key!r} in this run ({len(sessions)} sessions: "
            "give an id, an id prefix or a row number of 'journey replay RUN')"
        )
    ids = ", ".join(row.session_id for row in matches[:5]) + (", …" if len(matches) > 5 else "")
    raise ConfigError(f"session prefix {key!r} is ambiguous: it matches {ids}")


# -- the tree from the log ------------------------------------------------------------------


def tree_from_events(events: Iterable[SessionEvent]) -> ReasoningTree:
    """Rebuild the reasoning tree from an event log, e.g. one a crash left without tree.json.

    Raises:
        ValueError: The log does not start with the problem, or misses a step that later
            events refer to (a damaged line).
    """
    return SessionState.from_events(events).tree


# -- replaying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOptions:
    """How a session is replayed."""

    where: EventFilter = field(default_factory=EventFilter)
    speed: float = field(default=1.0, metadata={"help": "Replay this many times faster."})
    instant: bool = field(default=False, metadata={"help": "No delays at all."})
    cap: float = field(default=MAX_GAP, metadata={"help": "Longest single recorded gap (s)."})
    show_raw: bool = field(default=False, metadata={"help": "Show the models' raw replies."})
    tree: bool = field(default=False, metadata={"help": "Draw the reasoning tree at the end."})
    transcript: bool = field(default=False, metadata={"help": "Print the long thought."})

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ConfigError(f"--speed must be above 0, got {self.speed!r}")


def _load_tree(run: RunContents, session_id: str, log: EventLog) -> ReasoningTree:
    path = run.root / "sessions" / session_id / "tree.json"
    if path.is_file() and log.finished:
        return ReasoningTree.load(path)
    return tree_from_events(log.events)


def _note(words: str) -> Text:
    return Text(f"⚠ {words}", style="bold yellow")


def replay_session(
    run: RunContents,
    session_id: str,
    console: Console,
    options: ReplayOptions | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    pause: Callable[[], None] | None = None,
) -> EventLog:
    """Replay one session's event log on `console`, then what the options ask for.

    Args:
        run: The run (from `read_run`).
        session_id: The session's full id.
        console: Where to print.
        options: Filters, pacing and what to show at the end.
        sleep: Called with each delay (`time.sleep`; a recorder in tests).
        pause: Step mode: called before every event after the first instead of sleeping
            (e.g. wait for Enter).

    Returns:
        The event log as read, so callers can see whether it was cut short.

    Raises:
        ConfigError: The session has no event log.
    """
    options = options or ReplayOptions()
    path = run.events_path(session_id)
    if not path.is_file():
        raise ConfigError(f"session {session_id!r} has no event log at {str(path)!r}")
    log = read_event_log(path)
    renderer = SessionRenderer(console, show_raw=options.show_raw)
    shown: list[tuple[SessionEvent, RenderableType]] = []
    for event in select_events(log.events, options.where):
        renderable = renderer.renderable(event)
        if renderable is not None:
            shown.append((event, renderable))
    delays = pacing_delays(
        [e.time for e, _ in shown], speed=options.speed, cap=options.cap, instant=options.instant
    )
    heading = f"Replay of session {session_id}"
    if options.where.active:
        heading += f" · {options.where.describe()} · {len(shown)} of {len(log.events)} events"
    console.print(Text(heading, style="dim"))
    for index, ((_, renderable), delay) in enumerate(zip(shown, delays, strict=True)):
        if pause is not None:
            if index:
                pause()
        elif delay > 0:
            sleep(delay)
        console.print(renderable)
    if log.bad_lines:
        lines = ", ".join(str(n) for n in log.bad_lines)
        console.print(_note(f"damaged log lines skipped: {lines}"))
    if log.truncated:
        console.print(
            _note(
                "the event log is cut short (a crash mid-write?): "
                "replayed up to the last complete event"
            )
        )
    ended = log.events[-1] if log.finished else None
    if not isinstance(ended, SessionEnded):
        last_turn = max((e.turn for e in log.events), default=0)
        console.print(_note(f"unfinished: the log ends at turn {last_turn} without session_ended"))
    tree: ReasoningTree | None = None
    if options.tree or options.transcript:
        try:
            tree = _load_tree(run, session_id, log)
        except ValueError as error:  # the long thought falls back to the dialogue order
            if options.tree:
                console.print(_note(f"no tree to draw: {error}"))
    if options.tree and tree is not None:
        final = ended.final_node_id if isinstance(ended, SessionEnded) else None
        console.print(render_tree(tree, final_node_id=final))
    if options.transcript:
        thought = write_long_thought(log.events, tree)
        console.print(
            Panel(
                Text(thought or "(no steps)"),
                title=Text("Long thought", style="bold"),
                title_align="left",
                border_style="green",
            )
        )
    return log
